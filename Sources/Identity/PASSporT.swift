import Foundation

/// A SHAKEN PASSporT (RFC 8225 compact JWS with the RFC 8588 `shaken` extension), parsed but not yet verified.
public struct PASSporT: Sendable, Equatable {
    /// Protected header: `alg`, `typ`, `ppt`, `x5u`.
    public struct Header: Sendable, Equatable {
        public var alg: String
        public var typ: String
        public var ppt: String
        public var x5u: String
    }

    /// SHAKEN claims (RFC 8588 §5): all mandatory.
    public struct Claims: Sendable, Equatable {
        public var attest: Attestation
        /// `orig.tn` as written.
        public var origTN: String
        /// `dest.tn` as written (always an array in SHAKEN).
        public var destTNs: [String]
        /// `iat`, seconds since 1970.
        public var iat: Int64
        public var origID: String
    }

    /// Most `dest.tn` entries accepted.
    public static let maximumDestinations = 32

    public var header: Header
    public var claims: Claims
    /// `base64url(header) "." base64url(payload)` exactly as received: the bytes the signature covers.
    public var signingInput: [UInt8]
    /// The 64-byte raw `r‖s` ES256 signature.
    public var signature: Data

    /// Parses a compact JWS; every malformation gives its own reason.
    public static func parse(_ compact: String) -> Result<PASSporT, IdentityReason> {
        guard compact.utf8.count <= IdentityHeader.maximumLength else {
            return .failure(.init(.jwsMalformed, "PASSporT longer than \(IdentityHeader.maximumLength) bytes"))
        }
        let parts = compact.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            return .failure(.init(.jwsMalformed, "compact JWS needs 3 dot-separated parts, found \(parts.count)"))
        }
        guard !parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else {
            return .failure(.init(.jwsMalformed, "compact JWS has an empty part (detached payload is not SHAKEN)"))
        }
        guard let headerData = Base64URL.decode(parts[0]) else {
            return .failure(.init(.jwsMalformed, "JWS header is not base64url"))
        }
        guard let payloadData = Base64URL.decode(parts[1]) else {
            return .failure(.init(.jwsMalformed, "JWS payload is not base64url"))
        }
        guard let signature = Base64URL.decode(parts[2]) else {
            return .failure(.init(.jwsMalformed, "JWS signature is not base64url"))
        }
        guard signature.count == 64 else {
            return .failure(.init(.jwsMalformed, "ES256 signature must be 64 raw bytes (r||s), got \(signature.count)"))
        }

        let header: Header
        switch parseHeader(headerData) {
        case .success(let value): header = value
        case .failure(let reason): return .failure(reason)
        }
        let claims: Claims
        switch parseClaims(payloadData) {
        case .success(let value): claims = value
        case .failure(let reason): return .failure(reason)
        }
        let signingInput = Array(compact.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        return .success(PASSporT(header: header, claims: claims, signingInput: signingInput, signature: signature))
    }

    private static func jsonObject(_ data: Data) -> [String: Any]? {
        guard let object = try? JSONSerialization.jsonObject(with: data, options: []) else { return nil }
        return object as? [String: Any]
    }

    private static func parseHeader(_ data: Data) -> Result<Header, IdentityReason> {
        guard let object = jsonObject(data) else {
            return .failure(.init(.passportHeaderInvalid, "PASSporT header is not a JSON object"))
        }
        guard let alg = object["alg"] as? String else {
            return .failure(.init(.passportHeaderInvalid, "PASSporT header has no alg"))
        }
        guard alg == "ES256" else {
            return .failure(.init(.unsupportedAlgorithm, "PASSporT alg \(alg.prefix(16)) is not ES256"))
        }
        guard let typ = object["typ"] as? String, typ.lowercased() == "passport" else {
            return .failure(.init(.passportHeaderInvalid, "PASSporT typ must be passport"))
        }
        guard let ppt = object["ppt"] as? String else {
            return .failure(.init(.unsupportedPPT, "PASSporT header has no ppt (base PASSporT is not SHAKEN)"))
        }
        guard ppt == "shaken" else {
            return .failure(.init(.unsupportedPPT, "PASSporT ppt \(ppt.prefix(16)) is not shaken"))
        }
        guard let x5u = object["x5u"] as? String, !x5u.isEmpty else {
            return .failure(.init(.passportHeaderInvalid, "PASSporT header has no x5u"))
        }
        return .success(Header(alg: alg, typ: typ, ppt: ppt, x5u: x5u))
    }

    private static func parseClaims(_ data: Data) -> Result<Claims, IdentityReason> {
        func invalid(_ detail: String) -> Result<Claims, IdentityReason> { .failure(.init(.claimsInvalid, detail)) }
        guard let object = jsonObject(data) else { return invalid("PASSporT payload is not a JSON object") }

        guard let attestValue = object["attest"] else { return invalid("missing claim attest") }
        guard let attestText = attestValue as? String, let attest = Attestation(rawValue: attestText) else {
            return invalid("attest must be \"A\", \"B\" or \"C\"")
        }

        guard let origValue = object["orig"] else { return invalid("missing claim orig") }
        guard let orig = origValue as? [String: Any], let origTN = orig["tn"] as? String, !origTN.isEmpty,
            origTN.utf8.count <= 64
        else {
            return invalid("orig must be an object with a tn string")
        }

        guard let destValue = object["dest"] else { return invalid("missing claim dest") }
        guard let dest = destValue as? [String: Any], let destList = dest["tn"] as? [Any] else {
            return invalid("dest must be an object with a tn array")
        }
        guard !destList.isEmpty, destList.count <= maximumDestinations else {
            return invalid("dest.tn must hold 1…\(maximumDestinations) numbers")
        }
        var destTNs: [String] = []
        for entry in destList {
            guard let tn = entry as? String, !tn.isEmpty, tn.utf8.count <= 64 else {
                return invalid("dest.tn entries must be strings")
            }
            destTNs.append(tn)
        }

        guard let iatValue = object["iat"] else { return invalid("missing claim iat") }
        guard !(iatValue is String), let iatNumber = iatValue as? NSNumber else {
            return invalid("iat must be a NumericDate integer")
        }
        let iatDouble = iatNumber.doubleValue
        guard iatDouble.rounded() == iatDouble, abs(iatDouble) < 1e11 else {
            return invalid("iat must be a NumericDate integer")
        }

        guard let origIDValue = object["origid"] else { return invalid("missing claim origid") }
        guard let origID = origIDValue as? String, !origID.isEmpty, origID.utf8.count <= 128 else {
            return invalid("origid must be a non-empty string")
        }
        return .success(
            Claims(attest: attest, origTN: origTN, destTNs: destTNs, iat: Int64(iatDouble), origID: origID)
        )
    }
}
