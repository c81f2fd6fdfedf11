import Testing

/// The suites that run a whole lab conference (KD, MD, participants encoding VP8) with a
/// recorder. They run one after another, not side by side: two or three labs at once on a
/// 2-core machine starve the timing-sensitive key-plane suites running in parallel.
@Suite("Recorder against lab conferences", .serialized)
struct RecorderLabSuites {}
