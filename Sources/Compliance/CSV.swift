import Foundation

/// RFC 4180 CSV: quoted fields may hold commas, quotes (doubled) and line breaks, which disclosure texts do.
/// Lines starting with `#` before the header are comments (the shipped data files carry their provenance there).
enum CSV {
    struct Record {
        /// 1-based line on which the record starts, for error reports.
        var line: Int
        var fields: [String]
    }

    struct Table {
        var header: [String]
        var records: [Record]
        /// A record whose quotes never close: its line and everything after it is unreadable.
        var unterminatedAt: Int?
    }

    static func parse(_ text: String) -> Table {
        var records: [Record] = []
        var fields: [String] = []
        var field = ""
        var quoted = false
        var line = 1
        var recordLine = 1
        var atFieldStart = true
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let scalar = pending { pending = nil; return scalar }
            return iterator.next()
        }
        func endRecord() {
            fields.append(field)
            field = ""
            let isComment = records.isEmpty && fields.count >= 1 && fields[0].hasPrefix("#")
            let isBlank = fields.count == 1 && fields[0].isEmpty
            if !isComment && !isBlank { records.append(Record(line: recordLine, fields: fields)) }
            fields = []
            atFieldStart = true
        }
        while let scalar = next() {
            if quoted {
                if scalar == "\"" {
                    let following = next()
                    if following == "\"" { field.unicodeScalars.append("\"") } else { quoted = false; pending = following }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"" where atFieldStart:
                quoted = true
                atFieldStart = false
            case ",":
                fields.append(field)
                field = ""
                atFieldStart = true
            case "\r":
                continue
            case "\n":
                endRecord()
                line += 1
                recordLine = line
            default:
                field.unicodeScalars.append(scalar)
                atFieldStart = false
            }
        }
        let unterminated = quoted ? recordLine : nil
        if !quoted, !field.isEmpty || !fields.isEmpty { endRecord() }
        let header = records.first?.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? []
        return Table(header: header, records: Array(records.dropFirst()), unterminatedAt: unterminated)
    }
}
