import CSofiaSIP
import Foundation
import SofiaShim

/// A sofia tag list built in Swift for one `tl_nua_*` call. Owns copies of its strings until it is released;
/// nua duplicates the whole list before the call returns, so the list lives only for that call.
final class SofiaTagList {
    private var items: [tagi_t] = []
    private var strings: [UnsafeMutablePointer<CChar>] = []

    init() {}

    @discardableResult
    func add(_ tag: tag_type_t?, _ value: Int) -> SofiaTagList {
        items.append(tagi_t(t_tag: tag, t_value: tag_value_t(value)))
        return self
    }

    @discardableResult
    func add(_ tag: tag_type_t?, string: String) -> SofiaTagList {
        let copy = strdup(string)!
        strings.append(copy)
        items.append(tagi_t(t_tag: tag, t_value: tag_value_t(Int(bitPattern: copy))))
        return self
    }

    /// Calls `body` with the list terminated by TAG_END.
    func withTags<R>(_ body: (UnsafePointer<tagi_t>) -> R) -> R {
        let terminated = items + [tagi_t(t_tag: nil, t_value: 0)]
        return terminated.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    deinit {
        for string in strings { free(string) }
    }
}
