import EKT
import KeyExchange
import RTPWire
import SRTP

/// Settings of the reference Media Distributor.
public struct MediaDistributorConfig: Sendable {
    /// Forward only this many audio sources: the loudest by RFC 6464 level.
    public var loudestAudioSources = 3
    /// Outer payload types that mark audio and video sources (the MD sees only the outer header).
    public var audioPayloadTypes: Set<UInt8> = [111]
    public var videoPayloadTypes: Set<UInt8> = [96]
    /// Forward every video source, not only the speaker's (tests, small conferences).
    public var forwardAllVideo = false
    /// RFC 8285 one-byte extension id carrying the RFC 6464 audio level.
    public var audioLevelExtensionID: UInt8 = 1
    /// A source not heard for this long counts as silent (DTX sends nothing in silence).
    public var silenceAfter: Duration = .milliseconds(400)
    /// The speaker (whose video is forwarded) changes only after holding it this long.
    public var speakerHold: Duration = .milliseconds(800)
    /// Bounds on per-endpoint and per-SSRC state.
    public var maximumEndpoints = 256
    public var maximumSourcesPerEndpoint = 8
    /// Test mode: misbehave on purpose (RFC 8871 §8 attacks); nil in normal operation.
    public var malicious: MaliciousBehavior?

    public init() {}
}

/// What a malicious Media Distributor does in test mode. Receivers must detect each of these.
public struct MaliciousBehavior: Sendable {
    /// Every `replayEvery`-th packet of `replaySSRC`, also send again a packet it forwarded
    /// earlier (re-sealed with a fresh outer sequence number, as a real MD could).
    public var replaySSRC: UInt32?
    public var replayEvery = 25
    /// Rewrite the SSRC of `spliceFrom`'s packets to `spliceInto` before forwarding.
    public var spliceFrom: UInt32?
    public var spliceInto: UInt32?
    /// Hold the packets of `delaySSRC` after its first `delayAfterPackets` for `delay` before
    /// forwarding them (a sudden delay, as an attacker would add mid-call).
    public var delaySSRC: UInt32?
    public var delay: Duration = .milliseconds(500)
    public var delayAfterPackets = 5

    public init() {}
}

/// The reference selective-forwarding Media Distributor (RFC 8871 §4.1, RFC 8723 §5.2), sans I/O.
///
/// Endpoints are numbered by the caller (one per UDP source address). DTLS from an endpoint
/// goes to the Key Distributor through the tunnel under its association id; the KD's answer
/// goes back to the endpoint. `MediaKeys` from the KD key the endpoint's hop: the
/// client-write half opens what it sends, the server-write half seals what it receives. The MD
/// holds only these outer (HBH) keys: it cannot open the inner layer and never sees an E2E key.
///
/// Each SRTP packet is opened once (dropped and counted if it fails HBH authentication or is a
/// replay), then sealed again for every receiver it is selected for: the loudest N audio
/// sources by RFC 6464 level, and the current speaker's video. The outer sequence number is
/// rewritten to run contiguously per receiver and source, the original kept in the OHB. The
/// EKT field passes through untouched. SRTCP is opened and re-sealed hop by hop: reports go
/// to every other endpoint, feedback to the owner of the media SSRC. When the speaker changes,
/// the MD asks the new speaker for a key frame (PLI). An endpoint that sends percrec's recorder
/// subscription (`RTCPApplication.recorderSubscription`, RTCP APP "PRCR") gets every source.
///
/// Selective forwarding means a receiver may start getting a source long after its Full EKT
/// fields went by. The MD keeps each source's latest Full EKT field (ciphertext under the
/// EKTKey, useless to the MD) and puts it in place of the Short field on the first packet a
/// receiver gets after a gap, so the receiver can open the stream at once instead of waiting
/// for the sender's next periodic Full field.
public final class MediaDistributor {
    public typealias EndpointID = Int

    public enum Action: Sendable {
        case udp(EndpointID, [UInt8])
        case tunnel(TunnelMessage)
    }

    public struct Counters: Sendable, Equatable {
        public var dtlsToKD = 0, dtlsFromKD = 0
        public var rtpReceived = 0, rtpForwarded = 0, rtpNotSelected = 0
        public var rtcpReceived = 0, rtcpForwarded = 0
        public var hbhAuthenticationFailures = 0, replays = 0
        public var malformed = 0, noKeysYet = 0, unknownEndpoint = 0, stateLimit = 0
        public var speakerChanges = 0, keyFrameRequests = 0, fullFieldsInserted = 0
        public var maliciousReplays = 0, maliciousSplices = 0, maliciousDelays = 0
        /// Endpoints that subscribed as recorders (RTCP APP "PRCR") and get every source.
        public var recorderSubscriptions = 0
    }

    public let config: MediaDistributorConfig
    public private(set) var counters = Counters()

    private var endpoints: [EndpointID: Endpoint] = [:]
    private var byAssociation: [AssociationID: EndpointID] = [:]
    private var sources: [UInt32: Source] = [:]
    private var speaker: EndpointID?
    private var previousSpeaker: EndpointID?
    private var speakerSince: ContinuousClock.Instant?
    private var delayed: [(due: ContinuousClock.Instant, source: UInt32, plain: [UInt8], trailer: [UInt8])] = []
    private var replayStash: [UInt8]?
    /// Speakers whose video source was not known yet when they became the speaker: the PLI
    /// goes out when it appears.
    private var keyFramePending: Set<EndpointID> = []
    private var scratch = [UInt8](repeating: 0, count: 2048)
    private let mdSSRC: UInt32 = 0x4D44_0001   // "MD": sender SSRC of the MD's own feedback
    private var pendingActions: [Action] = []
    /// The loudest audible audio sources and the loudest one (`refreshRanking`).
    private var ranking: (loudest: Set<UInt32>, top: Source?) = ([], nil)
    private var rankingAge = MediaDistributor.rankingStale
    private var rankedAt: ContinuousClock.Instant?
    private static let rankingStale = 1 << 20

    public init(config: MediaDistributorConfig = .init()) {
        self.config = config
    }

    /// The first tunnel message: the protection profiles this MD supports (tunnel draft §5.1).
    public func start() -> [Action] {
        guard let profiles = try? TunnelMessage.SupportedProfiles(protectionProfiles: [DoubleSRTPProfile.doubleAeadAes128Gcm.rawValue]) else { return [] }
        return [.tunnel(.supportedProfiles(profiles))]
    }

    /// Every key the MD holds, for audits and tests: only HBH (outer) keys and salts.
    public var heldKeyMaterial: [SecretBytes] {
        endpoints.values.flatMap { e in
            e.mediaKeys.map { [$0.clientWriteMasterKey, $0.serverWriteMasterKey, $0.clientWriteMasterSalt, $0.serverWriteMasterSalt] } ?? []
        }
    }

    public var endpointCount: Int { endpoints.count }
    public var keyedEndpointCount: Int { endpoints.values.filter { $0.inbound != nil }.count }
    public var currentSpeaker: EndpointID? { speaker }
    /// Sources (SSRCs) the MD currently knows, by owner.
    public func sources(of endpoint: EndpointID) -> [UInt32] { sources.filter { $0.value.owner == endpoint }.map(\.key).sorted() }

    public var nextTimeout: ContinuousClock.Instant? { delayed.map(\.due).min() }

    // MARK: - Input

    /// A datagram from endpoint `id` (RFC 7983 demultiplexing).
    public func receive(datagram: [UInt8], from id: EndpointID, now: ContinuousClock.Instant = .now) -> [Action] {
        switch DatagramKind.classify(datagram) {
        case .dtls:
            guard let e = endpoint(id) else { return [] }
            guard let t = try? TunnelMessage.TunneledDtls(associationID: e.association, dtlsMessage: datagram) else {
                counters.malformed += 1
                return []
            }
            counters.dtlsToKD += 1
            return [.tunnel(.tunneledDtls(t))]
        case .rtp:
            counters.rtpReceived += 1
            return forwardRTP(datagram, from: id, now: now)
        case .rtcp:
            counters.rtcpReceived += 1
            return forwardRTCP(datagram, from: id)
        default:
            counters.malformed += 1
            return []
        }
    }

    /// A message from the Key Distributor.
    public func receive(tunnel message: TunnelMessage) -> [Action] {
        switch message {
        case let .tunneledDtls(t):
            guard let id = byAssociation[t.associationID] else { counters.unknownEndpoint += 1; return [] }
            counters.dtlsFromKD += 1
            return [.udp(id, t.dtlsMessage)]
        case let .mediaKeys(keys):
            guard let id = byAssociation[keys.associationID], let e = endpoints[id] else { counters.unknownEndpoint += 1; return [] }
            guard let profile = DoubleSRTPProfile(rawValue: keys.protectionProfile) else { counters.malformed += 1; return [] }
            do {
                e.inbound = try SRTPSession(profile: profile.layerProfile, masterKey: keys.clientWriteMasterKey,
                                            masterSalt: keys.clientWriteMasterSalt, direction: .inbound,
                                            maxStreams: config.maximumSourcesPerEndpoint)
                e.outbound = try SRTPSession(profile: profile.layerProfile, masterKey: keys.serverWriteMasterKey,
                                             masterSalt: keys.serverWriteMasterSalt, direction: .outbound,
                                             maxStreams: 4 * config.maximumSourcesPerEndpoint * config.maximumEndpoints)
                e.mediaKeys = keys
            } catch {
                counters.malformed += 1
            }
            return []
        case .unsupportedVersion, .supportedProfiles, .endpointDisconnect:
            return []
        }
    }

    /// Endpoint `id` is gone (idle or closed): forget it and tell the KD (tunnel draft §5.6).
    public func endpointGone(_ id: EndpointID) -> [Action] {
        guard let e = endpoints.removeValue(forKey: id) else { return [] }
        byAssociation[e.association] = nil
        for (ssrc, s) in sources where s.owner == id { sources[ssrc] = nil }
        ranking = ([], nil)
        rankingAge = Self.rankingStale
        keyFramePending.remove(id)
        if speaker == id { speaker = nil }
        if previousSpeaker == id { previousSpeaker = nil }
        return [.tunnel(.endpointDisconnect(.init(associationID: e.association)))]
    }

    /// Releases delayed packets (malicious test mode).
    public func handleTimeouts(now: ContinuousClock.Instant = .now) -> [Action] {
        guard !delayed.isEmpty else { return [] }
        var out: [Action] = []
        let due = delayed.filter { $0.due <= now }
        delayed.removeAll { $0.due <= now }
        for d in due { out += fanOut(plain: d.plain, trailer: d.trailer, source: d.source, now: now, allowDelay: false) }
        return out
    }

    // MARK: - RTP

    private func forwardRTP(_ datagram: [UInt8], from id: EndpointID, now: ContinuousClock.Instant) -> [Action] {
        guard let e = endpoints[id] else { counters.unknownEndpoint += 1; return [] }
        guard let inbound = e.inbound else { counters.noKeysYet += 1; return [] }
        // The EKT field trails the SRTP packet, outside the outer authentication (RFC 8870 §4.1).
        guard let (field, trailerLength) = try? EKTField.parse(trailerOf: datagram) else { counters.malformed += 1; return [] }
        let srtpLength = datagram.count - trailerLength
        var plain = Array(datagram[0 ..< srtpLength])
        let result: Result<Int, SRTPError> = plain.withUnsafeMutableBytes { buffer in
            do throws(SRTPError) { return .success(try inbound.unprotect(buffer)) } catch { return .failure(error) }
        }
        let opened: Int
        switch result {
        case let .success(n): opened = n
        case let .failure(error):
            countDrop(error)
            return []
        }
        plain.removeLast(plain.count - opened)
        guard let layout = try? RTPHeaderLayout(plain) else { counters.malformed += 1; return [] }
        let trailer = Array(datagram[srtpLength...])

        // Learn the source (bounded), its kind and loudness.
        let ssrc = layout.ssrc
        if sources[ssrc] == nil {
            guard sources.values.filter({ $0.owner == id }).count < config.maximumSourcesPerEndpoint else {
                counters.stateLimit += 1
                return []
            }
            let kind: Source.Kind = config.videoPayloadTypes.contains(layout.payloadType) ? .video : .audio
            sources[ssrc] = Source(owner: id, kind: kind)
            rankingAge = Self.rankingStale
            if kind == .video, keyFramePending.remove(id) != nil { pendingActions += keyFrameRequest(to: id) }
        }
        guard let source = sources[ssrc], source.owner == id else { counters.malformed += 1; return [] }
        source.lastHeard = now
        if case .full = field { source.lastFullField = trailer }
        if source.kind == .audio, let level = audioLevel(plain, layout) {
            source.loudness = 0.7 * source.loudness + 0.3 * Double(level.voiceActivity || level.level < 127 ? 127 - Int(level.level) : 0)
        }
        if source.kind == .audio { refreshRanking(now: now) }
        var out = pendingActions + updateSpeaker(now: now)
        pendingActions = []

        if let m = config.malicious {
            source.packetCount += 1
            if m.delaySSRC == ssrc, source.packetCount > m.delayAfterPackets {
                counters.maliciousDelays += 1
                delayed.append((now + m.delay, ssrc, plain, trailer))
                return out
            }
            if m.replaySSRC == ssrc {
                if source.packetCount == 5 { replayStash = plain }
                if source.packetCount % m.replayEvery == 0, let old = replayStash {
                    counters.maliciousReplays += 1
                    out += fanOut(plain: old, trailer: [], source: ssrc, now: now, allowDelay: false)
                }
            }
        }
        out += fanOut(plain: plain, trailer: trailer, source: ssrc, now: now, allowDelay: true)
        return out
    }

    /// Seals `plain` (an opened outer packet) for every receiver selected for `source`.
    private func fanOut(plain: [UInt8], trailer: [UInt8], source ssrc: UInt32, now: ContinuousClock.Instant, allowDelay: Bool) -> [Action] {
        guard let source = sources[ssrc] else { return [] }
        var plain = plain
        if let m = config.malicious, let from = m.spliceFrom, let into = m.spliceInto, from == ssrc, plain.count >= 12 {
            counters.maliciousSplices += 1
            plain[8] = UInt8(into >> 24); plain[9] = UInt8(truncatingIfNeeded: into >> 16)
            plain[10] = UInt8(truncatingIfNeeded: into >> 8); plain[11] = UInt8(truncatingIfNeeded: into)
        }
        let selected = isSelected(source, ssrc: ssrc, now: now)
        let isFull = trailer.count > 1
        var out: [Action] = []
        for (rid, r) in endpoints where rid != source.owner {
            guard let outbound = r.outbound else { continue }
            guard r.receivesAll || selected(rid) else {
                counters.rtpNotSelected += 1
                r.primed.remove(ssrc)
                continue
            }
            var trailer = trailer
            if source.kind == .video, !r.primed.contains(ssrc) { out += requestKeyFrame(source, ssrc: ssrc, now: now) }
            if isFull {
                r.primed.insert(ssrc)
            } else if !r.primed.contains(ssrc), !trailer.isEmpty, let full = source.lastFullField {
                trailer = full
                r.primed.insert(ssrc)
                counters.fullFieldsInserted += 1
            }
            let seq = r.nextSequence[ssrc, default: UInt16.random(in: 0 ... 0x7FFF)]
            let needed = plain.count + 3 + outbound.crypto.srtpOverhead
            if scratch.count < needed { scratch = [UInt8](repeating: 0, count: needed) }
            let sealed: Int
            do {
                sealed = try scratch.withUnsafeMutableBytes { buffer throws(SRTPError) -> Int in
                    plain.withUnsafeBytes { buffer.copyMemory(from: $0) }
                    return try DoubleSRTPRelay.sealHop(buffer, length: plain.count, rewrite: HeaderRewrite(sequenceNumber: seq),
                                                       outbound: outbound)
                }
            } catch {
                counters.malformed += 1
                continue
            }
            r.nextSequence[ssrc] = seq &+ 1
            counters.rtpForwarded += 1
            out.append(.udp(rid, Array(scratch[0 ..< sealed]) + trailer))
        }
        return out
    }

    /// Which receivers get `source` now: audio among the loudest N, video of the speaker (the
    /// speaker sees the previous speaker's video).
    private func isSelected(_ source: Source, ssrc: UInt32, now: ContinuousClock.Instant) -> (EndpointID) -> Bool {
        switch source.kind {
        case .audio:
            let loudest = ranking.loudest
            // A source that is silent (DTX) sends almost nothing; let it through when few talk.
            let pass = loudest.contains(ssrc) || loudest.count < config.loudestAudioSources
            return { _ in pass }
        case .video:
            let speaker = self.speaker, previous = self.previousSpeaker, owner = source.owner
            if config.forwardAllVideo { return { _ in true } }
            return { receiver in
                guard let speaker else { return true }   // nobody spoke yet: forward all video
                return receiver == speaker ? owner == (previous ?? speaker) && owner != receiver : owner == speaker
            }
        }
    }

    /// The speaker is the owner of the loudest audible source, held for `speakerHold`.
    /// Ranks the audible audio sources by loudness. Sorting every source on every packet would
    /// put O(n log n) work and allocations on the forwarding path, so the ranking is reused for
    /// up to 8 audio packets or 20 ms, and redone at once when a source appears.
    private func refreshRanking(now: ContinuousClock.Instant) {
        rankingAge += 1
        if rankingAge < 8, let at = rankedAt, now - at < .milliseconds(20) { return }
        let audible = sources.filter { $0.value.kind == .audio && $0.value.isAudible(now, config.silenceAfter) }
            .sorted { $0.value.loudness > $1.value.loudness }
        ranking = (Set(audible.prefix(config.loudestAudioSources).map(\.key)), audible.first?.value)
        rankingAge = 0
        rankedAt = now
    }

    private func updateSpeaker(now: ContinuousClock.Instant) -> [Action] {
        guard let top = ranking.top, top.loudness > 20 else { return [] }
        guard top.owner != speaker else { return [] }
        if let since = speakerSince, now - since < config.speakerHold, speaker != nil { return [] }
        previousSpeaker = speaker
        speaker = top.owner
        speakerSince = now
        counters.speakerChanges += 1
        let requests = keyFrameRequest(to: top.owner)
        if requests.isEmpty { keyFramePending.insert(top.owner) }
        return requests
    }

    /// A receiver starts getting video source `ssrc`: ask its owner for a key frame (at most
    /// every 500 ms per source), so the receiver can decode at once.
    private func requestKeyFrame(_ source: Source, ssrc: UInt32, now: ContinuousClock.Instant) -> [Action] {
        if let last = source.lastKeyFrameRequest, now - last < .milliseconds(500) { return [] }
        source.lastKeyFrameRequest = now
        guard let outbound = endpoints[source.owner]?.outbound else { return [] }
        var pli: [UInt8] = [0x81, 206, 0x00, 0x02]
        for v in [mdSSRC, ssrc] { pli += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }
        do { try outbound.protectRTCP(&pli) } catch { return [] }
        counters.keyFrameRequests += 1
        return [.udp(source.owner, pli)]
    }

    /// RTCP PLI (RFC 4585 §6.3.1) for every video source of `owner`, sealed on its hop.
    private func keyFrameRequest(to owner: EndpointID) -> [Action] {
        var out: [Action] = []
        let now = ContinuousClock.now
        for (ssrc, s) in sources where s.owner == owner && s.kind == .video {
            s.lastKeyFrameRequest = nil   // a speaker change always asks
            out += requestKeyFrame(s, ssrc: ssrc, now: now)
        }
        return out
    }

    private func audioLevel(_ plain: [UInt8], _ layout: RTPHeaderLayout) -> RTPAudioLevel? {
        guard layout.hasExtension, layout.baseLength + 4 <= plain.count else { return nil }
        let b = layout.baseLength
        let profile = UInt16(plain[b]) << 8 | UInt16(plain[b + 1])
        let words = Int(plain[b + 2]) << 8 | Int(plain[b + 3])
        guard b + 4 + 4 * words <= plain.count,
              let ext = try? RTPHeaderExtension(profile: profile, body: Array(plain[(b + 4) ..< (b + 4 + 4 * words)])),
              let elements = try? ext.elements,
              let element = elements.first(where: { $0.id == config.audioLevelExtensionID }) else { return nil }
        return try? RTPAudioLevel(elementData: element.data)
    }

    // MARK: - RTCP (hop by hop)

    private func forwardRTCP(_ datagram: [UInt8], from id: EndpointID) -> [Action] {
        guard let e = endpoints[id] else { counters.unknownEndpoint += 1; return [] }
        guard let inbound = e.inbound else { counters.noKeysYet += 1; return [] }
        var plain = datagram
        do { try inbound.unprotectRTCP(&plain) } catch {
            countDrop(error)
            return []
        }
        guard plain.count >= 8 else { counters.malformed += 1; return [] }
        if !e.receivesAll, RTCPApplication.containsRecorderSubscription(plain) {
            e.receivesAll = true
            counters.recorderSubscriptions += 1
        }
        // Feedback (RTPFB 205, PSFB 206) goes to the owner of the media SSRC; the rest to everyone else.
        var targets = Set(endpoints.keys).subtracting([id])
        let pt = plain[1]
        if (pt == 205 || pt == 206), plain.count >= 12 {
            let media = UInt32(plain[8]) << 24 | UInt32(plain[9]) << 16 | UInt32(plain[10]) << 8 | UInt32(plain[11])
            targets = sources[media].map { [$0.owner] } ?? []
        }
        var out: [Action] = []
        for rid in targets {
            guard let outbound = endpoints[rid]?.outbound else { continue }
            var copy = plain
            do { try outbound.protectRTCP(&copy) } catch { counters.malformed += 1; continue }
            counters.rtcpForwarded += 1
            out.append(.udp(rid, copy))
        }
        return out
    }

    private func countDrop(_ error: SRTPError) {
        switch error {
        case .replayed, .tooOld: counters.replays += 1
        case .authenticationFailed: counters.hbhAuthenticationFailures += 1
        case .tooManyStreams: counters.stateLimit += 1
        default: counters.malformed += 1
        }
    }

    // MARK: - Endpoints

    private func endpoint(_ id: EndpointID) -> Endpoint? {
        if let e = endpoints[id] { return e }
        guard endpoints.count < config.maximumEndpoints else { counters.stateLimit += 1; return nil }
        let e = Endpoint(association: .random())
        endpoints[id] = e
        byAssociation[e.association] = id
        return e
    }
}

private final class Endpoint {
    let association: AssociationID
    var inbound: SRTPSession?
    var outbound: SRTPSession?
    var mediaKeys: TunnelMessage.MediaKeys?
    /// Next outer sequence number per forwarded source: contiguous per receiver.
    var nextSequence: [UInt32: UInt16] = [:]
    /// Sources this receiver got a Full EKT field for since it last missed a packet of them.
    var primed: Set<UInt32> = []
    /// A recorder: gets every source, whatever the selection (RTCP APP "PRCR").
    var receivesAll = false

    init(association: AssociationID) { self.association = association }
}

private final class Source {
    enum Kind { case audio, video }
    let owner: MediaDistributor.EndpointID
    let kind: Kind
    var loudness = 0.0
    var lastHeard: ContinuousClock.Instant?
    var packetCount = 0
    var lastKeyFrameRequest: ContinuousClock.Instant?
    /// The latest Full EKT field this source sent.
    var lastFullField: [UInt8]?

    init(owner: MediaDistributor.EndpointID, kind: Kind) {
        self.owner = owner
        self.kind = kind
    }

    func isAudible(_ now: ContinuousClock.Instant, _ silenceAfter: Duration) -> Bool {
        guard let lastHeard else { return false }
        return now - lastHeard < silenceAfter
    }
}
