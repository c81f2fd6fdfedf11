import SRTP

extension TunnelMessage {
    /// MD -> KD: the DTLS-SRTP protection profiles (RFC 5764 code points) the Media
    /// Distributor supports (draft-ietf-perc-dtls-tunnel-12 §5.3, §6.2).
    public struct SupportedProfiles: Equatable, Sendable, CustomStringConvertible {
        /// The version this document specifies (§6.2).
        public static let currentVersion: UInt8 = 0
        /// Byte length of `protection_profiles`: `<2..2^16-1>` in §6.2, capped so the body
        /// (1 + 2 + list) fits the 16-bit `length`.
        public static let profileBytesRange = 2...(TunnelMessage.maximumBodyLength - 3)

        public let version: UInt8
        /// In preference order as sent; at least one, at most 32766.
        public let protectionProfiles: [UInt16]

        /// Throws `.invalidVectorLength(field: .protectionProfiles, ...)` for an empty or
        /// over-long list. Only version 0 can be parsed back by this implementation.
        public init(version: UInt8 = SupportedProfiles.currentVersion, protectionProfiles: [UInt16]) throws(TunnelError) {
            let bytes = protectionProfiles.count * 2
            guard SupportedProfiles.profileBytesRange.contains(bytes) else {
                throw .invalidVectorLength(field: .protectionProfiles, length: bytes,
                                           allowed: SupportedProfiles.profileBytesRange)
            }
            self.version = version
            self.protectionProfiles = protectionProfiles
        }

        var bodySize: Int { 1 + 2 + protectionProfiles.count * 2 }

        func writeBody(to out: inout [UInt8]) {
            out.append(version)
            out.appendTunnelUInt16(protectionProfiles.count * 2)
            for p in protectionProfiles { out.appendTunnelUInt16(Int(p)) }
        }

        /// Body layout (§6.2):
        /// ```
        /// +---------+---------------+-----------+-----------+-----
        /// | version | list len (u16)| profile 1 | profile 2 | ...
        /// |   (1)   |  2..65532 even|    (2)    |    (2)    |
        /// +---------+---------------+-----------+-----------+-----
        /// ```
        /// A version other than 0 is `.unsupportedVersion` (its layout is unknown, §5.5).
        init(reading r: inout TunnelReader) throws(TunnelError) {
            let version = try r.uint8(.version)
            guard version == SupportedProfiles.currentVersion else { throw .unsupportedVersion(version) }
            let list = try r.vector(.protectionProfiles, prefix: 2, allowed: SupportedProfiles.profileBytesRange)
            guard list.count % 2 == 0 else {
                throw .misalignedVector(field: .protectionProfiles, length: list.count, elementSize: 2)
            }
            var profiles: [UInt16] = []
            profiles.reserveCapacity(list.count / 2)
            var i = list.startIndex
            while i < list.endIndex {
                profiles.append(UInt16(list[i]) << 8 | UInt16(list[i + 1]))
                i += 2
            }
            self.version = version
            self.protectionProfiles = profiles
        }

        public var description: String {
            "SupportedProfiles(version: \(version), profiles: [\(protectionProfiles.map(tunnelHex16).joined(separator: ", "))])"
        }
    }

    /// KD -> MD: the highest tunnel version the Key Distributor speaks (§5.5, §6.3).
    public struct UnsupportedVersion: Equatable, Sendable, CustomStringConvertible {
        public let highestVersion: UInt8

        public init(highestVersion: UInt8) {
            self.highestVersion = highestVersion
        }

        var bodySize: Int { 1 }

        func writeBody(to out: inout [UInt8]) {
            out.append(highestVersion)
        }

        /// Body layout (§6.3); the whole message is 4 bytes (§5.5):
        /// ```
        /// +-----------------+
        /// | highest_version |
        /// |       (1)       |
        /// +-----------------+
        /// ```
        init(reading r: inout TunnelReader) throws(TunnelError) {
            highestVersion = try r.uint8(.highestVersion)
        }

        public var description: String { "UnsupportedVersion(highest: \(highestVersion))" }
    }

    /// KD -> MD: the profile and HBH keying material of one association, sent as soon as the
    /// endpoint's DTLS handshake completes (§5.4, §6.4). For the DOUBLE profiles
    /// (RFC 8723) the keys are the HBH halves only (§5.4). Not checked against the profile.
    /// Keys print as redacted.
    public struct MediaKeys: Equatable, Sendable, CustomStringConvertible {
        /// `mki<0..255>`: empty means no MKI (§6.4).
        public static let mkiLengthRange = 0...255
        /// Keys and salts are `<1..255>` (§6.4).
        public static let keyingLengthRange = 1...255

        public let associationID: AssociationID
        /// The selected SRTP protection profile (RFC 5764 code point).
        public let protectionProfile: UInt16
        /// Master key identifier (RFC 3711); empty when none.
        public let mki: [UInt8]
        /// Used by the client (endpoint) to send.
        public let clientWriteMasterKey: SecretBytes
        /// Used by the server side (the Media Distributor) to send to the endpoint.
        public let serverWriteMasterKey: SecretBytes
        public let clientWriteMasterSalt: SecretBytes
        public let serverWriteMasterSalt: SecretBytes

        /// Throws `.invalidVectorLength` for an MKI over 255 bytes or a key/salt outside 1...255.
        public init(associationID: AssociationID, protectionProfile: UInt16, mki: [UInt8] = [],
                    clientWriteMasterKey: SecretBytes, serverWriteMasterKey: SecretBytes,
                    clientWriteMasterSalt: SecretBytes, serverWriteMasterSalt: SecretBytes) throws(TunnelError) {
            guard MediaKeys.mkiLengthRange.contains(mki.count) else {
                throw .invalidVectorLength(field: .mki, length: mki.count, allowed: MediaKeys.mkiLengthRange)
            }
            let keying: [(TunnelField, SecretBytes)] = [
                (.clientWriteMasterKey, clientWriteMasterKey), (.serverWriteMasterKey, serverWriteMasterKey),
                (.clientWriteMasterSalt, clientWriteMasterSalt), (.serverWriteMasterSalt, serverWriteMasterSalt),
            ]
            for (field, value) in keying where !MediaKeys.keyingLengthRange.contains(value.count) {
                throw .invalidVectorLength(field: field, length: value.count, allowed: MediaKeys.keyingLengthRange)
            }
            self.associationID = associationID
            self.protectionProfile = protectionProfile
            self.mki = mki
            self.clientWriteMasterKey = clientWriteMasterKey
            self.serverWriteMasterKey = serverWriteMasterKey
            self.clientWriteMasterSalt = clientWriteMasterSalt
            self.serverWriteMasterSalt = serverWriteMasterSalt
        }

        var bodySize: Int {
            AssociationID.byteCount + 2 + 1 + mki.count + 4
                + clientWriteMasterKey.count + serverWriteMasterKey.count
                + clientWriteMasterSalt.count + serverWriteMasterSalt.count
        }

        func writeBody(to out: inout [UInt8]) {
            associationID.write(to: &out)
            out.appendTunnelUInt16(Int(protectionProfile))
            out.append(UInt8(mki.count))
            out.append(contentsOf: mki)
            for secret in [clientWriteMasterKey, serverWriteMasterKey, clientWriteMasterSalt, serverWriteMasterSalt] {
                out.append(UInt8(secret.count))
                secret.withUnsafeBytes { out.append(contentsOf: $0) }
            }
        }

        /// Body layout (§6.4), every vector with a 1-byte length prefix:
        /// ```
        /// +--------------------+---------+---------+----------------+
        /// | association_id(16) | profile | mki len | mki (0..255)   |
        /// |                    |   (2)   |   (1)   |                |
        /// +--------------------+---------+---------+----------------+
        /// | len | client_write_SRTP_master_key  (1..255)            |
        /// | len | server_write_SRTP_master_key  (1..255)            |
        /// | len | client_write_SRTP_master_salt (1..255)            |
        /// | len | server_write_SRTP_master_salt (1..255)            |
        /// +-----+---------------------------------------------------+
        /// ```
        init(reading r: inout TunnelReader) throws(TunnelError) {
            associationID = try r.associationID()
            protectionProfile = try r.uint16(.protectionProfile)
            mki = Array(try r.vector(.mki, prefix: 1, allowed: MediaKeys.mkiLengthRange))
            let range = MediaKeys.keyingLengthRange
            clientWriteMasterKey = SecretBytes(try r.vector(.clientWriteMasterKey, prefix: 1, allowed: range))
            serverWriteMasterKey = SecretBytes(try r.vector(.serverWriteMasterKey, prefix: 1, allowed: range))
            clientWriteMasterSalt = SecretBytes(try r.vector(.clientWriteMasterSalt, prefix: 1, allowed: range))
            serverWriteMasterSalt = SecretBytes(try r.vector(.serverWriteMasterSalt, prefix: 1, allowed: range))
        }

        public var description: String {
            "MediaKeys(association: \(associationID), profile: \(tunnelHex16(protectionProfile)), mki: \(mki.count) bytes, "
                + "client key/salt: \(clientWriteMasterKey)/\(clientWriteMasterSalt), "
                + "server key/salt: \(serverWriteMasterKey)/\(serverWriteMasterSalt))"
        }
    }

    /// Either direction: the UDP payload of one DTLS datagram, one or more whole DTLS
    /// records, of the named association (§5.3, §6.5).
    public struct TunneledDtls: Equatable, Sendable, CustomStringConvertible {
        /// `dtls_message<1..2^16-1>` (§6.5), capped so the body (16 + 2 + message) fits the
        /// 16-bit `length`.
        public static let dtlsLengthRange = 1...(TunnelMessage.maximumBodyLength - AssociationID.byteCount - 2)

        public let associationID: AssociationID
        public let dtlsMessage: [UInt8]

        /// Throws `.invalidVectorLength(field: .dtlsMessage, ...)` for an empty or over-long message.
        public init(associationID: AssociationID, dtlsMessage: [UInt8]) throws(TunnelError) {
            guard TunneledDtls.dtlsLengthRange.contains(dtlsMessage.count) else {
                throw .invalidVectorLength(field: .dtlsMessage, length: dtlsMessage.count,
                                           allowed: TunneledDtls.dtlsLengthRange)
            }
            self.associationID = associationID
            self.dtlsMessage = dtlsMessage
        }

        var bodySize: Int { AssociationID.byteCount + 2 + dtlsMessage.count }

        func writeBody(to out: inout [UInt8]) {
            associationID.write(to: &out)
            out.appendTunnelUInt16(dtlsMessage.count)
            out.append(contentsOf: dtlsMessage)
        }

        /// Body layout (§6.5):
        /// ```
        /// +--------------------+-----------+------------------------+
        /// | association_id(16) | len (u16) | dtls_message (1..65517)|
        /// +--------------------+-----------+------------------------+
        /// ```
        init(reading r: inout TunnelReader) throws(TunnelError) {
            associationID = try r.associationID()
            dtlsMessage = Array(try r.vector(.dtlsMessage, prefix: 2, allowed: TunneledDtls.dtlsLengthRange))
        }

        public var description: String {
            "TunneledDtls(association: \(associationID), \(dtlsMessage.count) bytes)"
        }
    }

    /// Either direction: the association has ended (§5.3, §5.4, §6.6).
    public struct EndpointDisconnect: Equatable, Sendable, CustomStringConvertible {
        public let associationID: AssociationID

        public init(associationID: AssociationID) {
            self.associationID = associationID
        }

        var bodySize: Int { AssociationID.byteCount }

        func writeBody(to out: inout [UInt8]) {
            associationID.write(to: &out)
        }

        /// Body layout (§6.6):
        /// ```
        /// +--------------------+
        /// | association_id(16) |
        /// +--------------------+
        /// ```
        init(reading r: inout TunnelReader) throws(TunnelError) {
            associationID = try r.associationID()
        }

        public var description: String { "EndpointDisconnect(association: \(associationID))" }
    }
}

/// `0x0009` style.
func tunnelHex16(_ v: UInt16) -> String {
    let s = String(v, radix: 16, uppercase: true)
    return "0x" + String(repeating: "0", count: 4 - s.count) + s
}
