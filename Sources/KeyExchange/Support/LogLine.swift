import Foundation

/// One structured log line: an event name and ordered key=value fields, printed as
/// `event key=value key="value with spaces"` so that logs stay greppable and machine-readable.
public struct LogLine: Sendable, CustomStringConvertible {
    public let event: String
    public let fields: [(key: String, value: String)]

    public init(_ event: String, _ fields: KeyValuePairs<String, String> = [:]) {
        self.event = event
        self.fields = fields.map { ($0.key, $0.value) }
    }

    private init(event: String, fields: [(key: String, value: String)]) {
        self.event = event
        self.fields = fields
    }

    public func value(_ key: String) -> String? { fields.first { $0.key == key }?.value }

    /// The same line with `component.` in front of the event (`kd.member.joined`).
    public func prefixed(_ component: String) -> LogLine { LogLine(event: component + "." + event, fields: fields) }

    public var description: String {
        var s = event
        for (k, v) in fields {
            let quoted = v.isEmpty || v.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" })
            s += " \(k)=" + (quoted ? "\"" + v.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : v)
        }
        return s
    }
}
