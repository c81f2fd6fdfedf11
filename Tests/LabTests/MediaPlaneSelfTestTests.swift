import Testing
import Lab

@Suite("percrec demo: media-plane self-test")
struct MediaPlaneSelfTestTests {
    @Test("every step of the sender → Media Distributor → receiver tour passes")
    func allStepsPass() {
        var test = MediaPlaneSelfTest()
        test.run()
        for step in test.steps { #expect(step.ok, "\(step.actor): \(step.text)") }
        #expect(test.passed)
        #expect(test.steps.count == 15)
        #expect(Set(test.steps.map(\.actor)) == ["key distributor", "sender", "media distributor", "receiver"])
    }
}
