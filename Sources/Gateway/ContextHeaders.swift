import Foundation

/// Signalling headers that carry a caller's context into the agent's `customParameters`: where a contact center
/// diverted the call from (Diversion, History-Info), what it attached (User-to-User), and the trunk's own X- headers.
///
/// Only names on the allow-list pass, each becomes `sip_<name>` (lower case, `-` → `_`) so it can never shadow a
/// parameter the gateway sets, repeated headers are joined with ", ", and values lose control characters and are cut
/// to `maximumLength`. The agent message is JSON-encoded, so a value cannot add parameters of its own.
enum ContextHeaders {
    /// Always passed: the headers contact centers use to say why a call was forwarded.
    static let standard = ["diversion", "history-info", "user-to-user"]
    static let maximumLength = 512

    static func parameters(from headers: [(name: String, value: String)], allowed extra: [String]) -> [(name: String, value: String)] {
        let allowed = standard + extra.map { $0.lowercased() }
        var values: [String: [String]] = [:]
        for header in headers {
            let name = header.name.lowercased()
            guard allowed.contains(name) else { continue }
            values[name, default: []].append(clean(header.value))
        }
        var result: [(name: String, value: String)] = []
        for name in allowed {
            guard let list = values[name] else { continue }
            let value = String(list.joined(separator: ", ").prefix(maximumLength))
            let parameter = "sip_" + name.replacingOccurrences(of: "-", with: "_")
            result.append((parameter, value))
            if name == "user-to-user", let text = decodedUserToUser(list[0]) { result.append(("sip_user_to_user_text", text)) }
        }
        return result
    }

    private static func clean(_ value: String) -> String {
        String(value.unicodeScalars.filter { !CharacterSet.controlCharacters.contains($0) }.map(Character.init))
            .trimmingCharacters(in: .whitespaces)
    }

    /// RFC 7433: `hex-data;encoding=hex` (the default encoding) → the text it carries, when it is printable UTF-8.
    static func decodedUserToUser(_ value: String) -> String? {
        let parts = value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let data = parts.first, data.count.isMultiple(of: 2), !data.isEmpty else { return nil }
        let encoding = parts.dropFirst().first { $0.lowercased().hasPrefix("encoding=") }?.dropFirst(9).lowercased() ?? "hex"
        guard encoding == "hex" else { return nil }
        var bytes: [UInt8] = []
        var index = data.startIndex
        while index < data.endIndex {
            let next = data.index(index, offsetBy: 2)
            guard let byte = UInt8(data[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        guard let text = String(bytes: bytes, encoding: .utf8), !text.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) else {
            return nil
        }
        return String(text.prefix(maximumLength))
    }
}
