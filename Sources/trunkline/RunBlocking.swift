import Dispatch

/// Runs async work from a synchronous ArgumentParser command (the root command is not async).
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let box = BlockingResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.value = await body()
        done.signal()
    }
    done.wait()
    return box.value!
}

private final class BlockingResultBox<T>: @unchecked Sendable {
    var value: T?
}
