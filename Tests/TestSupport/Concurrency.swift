import Foundation

/// Runs blocking work (joining threads, waiting on semaphores) on a thread of its own, so the
/// test never blocks Swift concurrency's cooperative threads: other suites' `Task.sleep`
/// timers (the DTLS retransmission tests) keep running on time.
public func offPool(_ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        Thread.detachNewThread {
            body()
            done.resume()
        }
    }
}

/// Runs `body`, then `cleanup` off the cooperative pool, whether or not `body` threw.
public func withCleanup(_ cleanup: @escaping @Sendable () -> Void, _ body: () async throws -> Void) async throws {
    let result: Result<Void, any Error>
    do { try await body(); result = .success(()) } catch { result = .failure(error) }
    await offPool(cleanup)
    try result.get()
}

/// Polls `condition` every 20 ms until it holds or `limit` passes.
public func eventually(_ limit: Duration = .seconds(10), _ condition: () -> Bool) async throws -> Bool {
    let start = ContinuousClock.now
    while ContinuousClock.now - start < limit {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}
