import Export
import Testing

@Suite("Export: --from/--to time parsing")
struct TimePointTests {
    @Test("offsets and wall-clock times parse; garbage does not", arguments: [
        ("90", ExportRequest.TimePoint.offset(90)), ("90.5s", .offset(90.5)), ("1m30s", .offset(90)), ("1h2m", .offset(3720)),
        ("01:30", .offset(90)), ("1:02:03.5", .offset(3723.5)), ("2026-11-22T10:00:05Z", .wallClock(1_795_341_605)),
        ("2026-11-22T10:00:05.250Z", .wallClock(1_795_341_605.25)),
    ])
    func parses(_ text: String, _ expected: ExportRequest.TimePoint) {
        #expect(ExportRequest.TimePoint(parsing: text) == expected)
    }

    @Test("refuses what is neither", arguments: ["", "abc", "1x", "1:2:3:4", "-5", "2026-13-40T99:00:00Z", "1:xx"])
    func refuses(_ text: String) {
        #expect(ExportRequest.TimePoint(parsing: text) == nil)
    }
}
