/// Why a STIR/SHAKEN verification did not produce a plain "valid" result, mapped to the SIP status code
/// RFC 8224 / RFC 8588 gives that failure (428, 436, 437, 438, 403).
///
/// Equality and hashing look at ``code`` only, so tests and dialplans compare codes; ``detail`` is free text for logs.
public struct IdentityReason: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable failure code (`stale_iat`, `bad_signature`, …).
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Base: String, Sendable {
            case noIdentity = "no_identity"
            case identityHeaderMalformed = "identity_header_malformed"
            case infoMissing = "info_missing"
            case infoMalformed = "info_malformed"
            case unsupportedAlgorithm = "unsupported_alg"
            case unsupportedPPT = "unsupported_ppt"
            case jwsMalformed = "jws_malformed"
            case passportHeaderInvalid = "passport_header_invalid"
            case x5uMismatch = "x5u_info_mismatch"
            case claimsInvalid = "claims_invalid"
            case staleIAT = "stale_iat"
            case futureIAT = "future_iat"
            case x5uNotHTTPS = "x5u_not_https"
            case x5uForbiddenComponent = "x5u_forbidden_component"
            case x5uForbiddenTarget = "x5u_forbidden_target"
            case x5uUnreachable = "x5u_unreachable"
            case x5uTimeout = "x5u_timeout"
            case x5uBadResponse = "x5u_bad_response"
            case x5uTooLarge = "x5u_too_large"
            case certificateMalformed = "certificate_malformed"
            case certificateUnsupportedKey = "certificate_unsupported_key"
            case certificateExpired = "certificate_expired"
            case certificateNotYetValid = "certificate_not_yet_valid"
            case chainUntrusted = "chain_untrusted"
            case tnAuthListMissing = "tn_auth_list_missing"
            case tnAuthListInvalid = "tn_auth_list_invalid"
            case badSignature = "bad_signature"
            case origMismatch = "orig_mismatch"
            case destMismatch = "dest_mismatch"
            case carrierFailed = "carrier_failed"
            case carrierNoValidation = "carrier_no_validation"
        }

        fileprivate let base: Base
        fileprivate init(_ base: Base) { self.base = base }

        public static let noIdentity = Code(.noIdentity)
        public static let identityHeaderMalformed = Code(.identityHeaderMalformed)
        public static let infoMissing = Code(.infoMissing)
        public static let infoMalformed = Code(.infoMalformed)
        public static let unsupportedAlgorithm = Code(.unsupportedAlgorithm)
        public static let unsupportedPPT = Code(.unsupportedPPT)
        public static let jwsMalformed = Code(.jwsMalformed)
        public static let passportHeaderInvalid = Code(.passportHeaderInvalid)
        public static let x5uMismatch = Code(.x5uMismatch)
        public static let claimsInvalid = Code(.claimsInvalid)
        public static let staleIAT = Code(.staleIAT)
        public static let futureIAT = Code(.futureIAT)
        public static let x5uNotHTTPS = Code(.x5uNotHTTPS)
        public static let x5uForbiddenComponent = Code(.x5uForbiddenComponent)
        public static let x5uForbiddenTarget = Code(.x5uForbiddenTarget)
        public static let x5uUnreachable = Code(.x5uUnreachable)
        public static let x5uTimeout = Code(.x5uTimeout)
        public static let x5uBadResponse = Code(.x5uBadResponse)
        public static let x5uTooLarge = Code(.x5uTooLarge)
        public static let certificateMalformed = Code(.certificateMalformed)
        public static let certificateUnsupportedKey = Code(.certificateUnsupportedKey)
        public static let certificateExpired = Code(.certificateExpired)
        public static let certificateNotYetValid = Code(.certificateNotYetValid)
        public static let chainUntrusted = Code(.chainUntrusted)
        public static let tnAuthListMissing = Code(.tnAuthListMissing)
        public static let tnAuthListInvalid = Code(.tnAuthListInvalid)
        public static let badSignature = Code(.badSignature)
        public static let origMismatch = Code(.origMismatch)
        public static let destMismatch = Code(.destMismatch)
        public static let carrierFailed = Code(.carrierFailed)
        public static let carrierNoValidation = Code(.carrierNoValidation)

        /// The SIP response code RFC 8224 assigns to this failure (the one place this mapping lives).
        public var sipStatus: Int {
            switch base {
            case .noIdentity, .carrierNoValidation:
                return 428
            case .infoMissing, .infoMalformed, .x5uNotHTTPS, .x5uForbiddenComponent, .x5uForbiddenTarget,
                .x5uUnreachable, .x5uTimeout, .x5uBadResponse, .x5uTooLarge:
                return 436
            case .unsupportedAlgorithm, .certificateMalformed, .certificateUnsupportedKey, .certificateExpired,
                .certificateNotYetValid, .chainUntrusted, .tnAuthListMissing, .tnAuthListInvalid:
                return 437
            case .identityHeaderMalformed, .unsupportedPPT, .jwsMalformed, .passportHeaderInvalid, .x5uMismatch,
                .claimsInvalid, .badSignature, .origMismatch, .destMismatch, .carrierFailed:
                return 438
            case .staleIAT, .futureIAT:
                return 403
            }
        }

        /// The reason phrase RFC 8224 gives ``sipStatus``.
        public var sipReasonPhrase: String {
            switch sipStatus {
            case 428: return "Use Identity Header"
            case 436: return "Bad Identity Info"
            case 437: return "Unsupported Credential"
            case 403: return "Stale Date"
            default: return "Invalid Identity Header"
            }
        }

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// Human-readable detail (never parsed by code).
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var sipStatus: Int { code.sipStatus }

    public var description: String { "\(code.sipStatus) \(code) (\(detail))" }

    public static func == (lhs: IdentityReason, rhs: IdentityReason) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
