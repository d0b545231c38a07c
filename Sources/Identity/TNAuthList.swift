import SwiftASN1

/// The RFC 8226 TNAuthList certificate extension (OID 1.3.6.1.5.5.7.1.26):
/// `SEQUENCE OF TNEntry`, `TNEntry ::= CHOICE { spc [0] EXPLICIT IA5String, range [1] …, one [2] … }`.
public struct TNAuthList: Sendable, Equatable {
    public static let oid: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 26]

    /// Service Provider Codes, in order.
    public var spcs: [String]
    /// Number of telephone-number range / single-number entries (not used by SHAKEN SP certificates).
    public var otherEntries: Int
    /// Encoding deviations that were tolerated (e.g. an SPC without its `[0]` tag).
    public var warnings: [String]

    /// Parses the extension's `extnValue` bytes.
    public static func parse(_ bytes: ArraySlice<UInt8>) -> Result<TNAuthList, IdentityReason> {
        func invalid(_ detail: String) -> Result<TNAuthList, IdentityReason> {
            .failure(.init(.tnAuthListInvalid, detail))
        }
        let root: ASN1Node
        do { root = try DER.parse(bytes) } catch { return invalid("TNAuthList is not DER") }
        guard root.identifier == .sequence, case .constructed(let entries) = root.content else {
            return invalid("TNAuthList is not a SEQUENCE")
        }
        var list = TNAuthList(spcs: [], otherEntries: 0, warnings: [])
        for entry in entries {
            switch (entry.identifier.tagClass, entry.identifier.tagNumber) {
            case (.contextSpecific, 0):
                guard case .constructed(let inner) = entry.content, let string = inner.first(where: { _ in true }),
                    let spc = Self.string(string)
                else {
                    return invalid("TNAuthList SPC entry is not [0] EXPLICIT IA5String")
                }
                list.spcs.append(spc)
            case (.contextSpecific, 1), (.contextSpecific, 2):
                list.otherEntries += 1
            case (.universal, _):
                guard let spc = Self.string(entry) else { return invalid("TNAuthList holds an unknown entry") }
                list.spcs.append(spc)
                list.warnings.append("TNAuthList SPC \(spc) is not [0]-tagged (RFC 8226)")
            default:
                return invalid("TNAuthList holds an unknown entry")
            }
        }
        return .success(list)
    }

    private static func string(_ node: ASN1Node) -> String? {
        if let value = try? ASN1IA5String(derEncoded: node) { return String(value) }
        if let value = try? ASN1PrintableString(derEncoded: node) { return String(value) }
        if let value = try? ASN1UTF8String(derEncoded: node) { return String(value) }
        return nil
    }

    /// DER for a TNAuthList with one SPC entry (for signing-side tooling and tests).
    public static func encode(spc: String) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { sequence in
            try sequence.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) {
                try $0.serialize(ASN1IA5String(spc))
            }
        }
        return serializer.serializedBytes
    }
}
