import Foundation
import Gateway
import Hummingbird

/// Twilio's call resource (the fields bots read), as `GET/POST …/Calls/{CallSid}.json` return it.
struct TwilioCallResource: ResponseCodable {
    var sid: String
    var account_sid: String
    var from: String
    var to: String
    var status: String
    var direction: String
    var start_time: String?
    var end_time: String?
    var duration: String?
    var api_version = "2010-04-01"
    var uri: String

    init(_ summary: CallSummary, accountSid: String) {
        let record = summary.record
        sid = record.callSid
        account_sid = accountSid
        from = record.from
        to = record.to
        status = summary.status.rawValue
        direction = record.direction
        start_time = Self.rfc2822(record.answerTime ?? record.startTime)
        end_time = record.endTime.map(Self.rfc2822)
        duration = record.endTime.map { _ in String(Int(record.durationSeconds.rounded())) }
        uri = "/2010-04-01/Accounts/\(accountSid)/Calls/\(record.callSid).json"
    }

    /// Twilio writes dates as RFC 2822 in UTC ("Tue, 25 Nov 2026 07:14:55 +0000").
    static func rfc2822(_ date: Date) -> String {
        date.formatted(Date.VerbatimFormatStyle(
            format: "\(weekday: .abbreviated), \(day: .twoDigits) \(month: .abbreviated) \(year: .defaultDigits) \(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):\(minute: .twoDigits):\(second: .twoDigits) +0000",
            locale: Locale(identifier: "en_US_POSIX"), timeZone: TimeZone(identifier: "UTC")!, calendar: Calendar(identifier: .gregorian)))
    }
}

struct TwilioCallList: ResponseCodable {
    var calls: [TwilioCallResource]
}

/// The form body of `POST …/Calls/{CallSid}.json`.
struct TwilioCallUpdate: Decodable {
    var Status: String
}

/// Errors in Twilio's JSON shape (`code`, `message`, `more_info`, `status`): a 404 carries code 20404, which
/// clients such as Pipecat read as "the call has already ended".
enum TwilioRESTError: HTTPResponseError {
    case notFound(String)
    case unauthorized
    case badRequest(String)

    var status: HTTPResponse.Status {
        switch self {
        case .notFound: .notFound
        case .unauthorized: .unauthorized
        case .badRequest: .badRequest
        }
    }

    var code: Int {
        switch self {
        case .notFound: 20404
        case .unauthorized: 20003
        case .badRequest: 21218
        }
    }

    var message: String {
        switch self {
        case .notFound(let sid): "The requested resource \(sid) was not found"
        case .unauthorized: "Authenticate"
        case .badRequest(let why): why
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        // Encoded, not interpolated: a message may quote hostile input (quotes, control characters).
        let fields = ErrorBody(code: code, message: message, more_info: "https://www.twilio.com/docs/errors/\(code)", status: Int(status.code))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try encoder.encode(fields)
        var headers: HTTPFields = [.contentType: "application/json"]
        if case .unauthorized = self { headers[.wwwAuthenticate] = #"Basic realm="Twilio API""# }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    private struct ErrorBody: Encodable {
        var code: Int
        var message: String
        var more_info: String
        var status: Int
    }
}
