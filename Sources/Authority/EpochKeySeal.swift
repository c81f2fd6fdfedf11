@preconcurrency import Crypto
import EKT
import Foundation
import SRTP

/// An EKTKey (one conference key epoch) sealed to the archive authority with HPKE (RFC 9180,
/// base mode): DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
///
/// The sealed plaintext is the EKT cipher's wire value followed by the EKTKey handshake body
/// exactly as the Key Distributor sent it (RFC 8870 §5.2.2: key, master salt, SPI, TTL). The
/// conference, SPI and cipher are bound as AAD, so a sealed key moved to another epoch or
/// conference in the (untrusted) archive fails to open.
public struct SealedEpochKey: Sendable, Equatable {
    /// HPKE suite name as stored in the archive.
    public static let suiteName = "DHKEM(X25519,HKDF-SHA256)/HKDF-SHA256/AES-128-GCM"
    static let suite = HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: .AES_GCM_128)
    /// HPKE `info`: names the purpose and the format version.
    public static let info = Array("percrec epoch key v1".utf8)

    public var conference: String
    public var spi: UInt16
    public var cipher: EKTCipher
    /// `AuthorityPublicKey.keyID` of the key it was sealed to.
    public var authorityKeyID: String
    /// HPKE `enc`: the sender's ephemeral X25519 public key (32 bytes).
    public var encapsulatedKey: [UInt8]
    /// AES-128-GCM ciphertext and tag.
    public var ciphertext: [UInt8]

    public init(conference: String, spi: UInt16, cipher: EKTCipher, authorityKeyID: String,
                encapsulatedKey: [UInt8], ciphertext: [UInt8]) {
        self.conference = conference
        self.spi = spi
        self.cipher = cipher
        self.authorityKeyID = authorityKeyID
        self.encapsulatedKey = encapsulatedKey
        self.ciphertext = ciphertext
    }

    /// The AAD: a version byte, the conference name (length-prefixed UTF-8), SPI, cipher.
    public static func associatedData(conference: String, spi: UInt16, cipher: EKTCipher) -> [UInt8] {
        let name = Array(conference.utf8)
        var out: [UInt8] = [1, UInt8(truncatingIfNeeded: name.count >> 8), UInt8(truncatingIfNeeded: name.count)]
        out += name
        out += [UInt8(spi >> 8), UInt8(spi & 0xFF), cipher.wireValue()]
        return out
    }

    /// Seals `message` (negotiated with `cipher`) for `conference` to `authority`.
    public static func seal(_ message: EKTKeyMessage, cipher: EKTCipher, conference: String,
                            to authority: AuthorityPublicKey) throws(AuthorityError) -> SealedEpochKey {
        var plaintext = [cipher.wireValue()] + message.serialized()
        defer { _ = plaintext.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        let aad = associatedData(conference: conference, spi: message.spi, cipher: cipher)
        do {
            var sender = try HPKE.Sender(recipientKey: authority.key, ciphersuite: suite, info: Data(info))
            let sealed = try sender.seal(plaintext, authenticating: aad)
            return SealedEpochKey(conference: conference, spi: message.spi, cipher: cipher, authorityKeyID: authority.keyID,
                                  encapsulatedKey: [UInt8](sender.encapsulatedKey), ciphertext: [UInt8](sealed))
        } catch {
            throw .malformedSealedKey(reason: "HPKE seal failed: \(error)")
        }
    }

    /// Opens the sealed key with the authority's private key. Fails if the key is not the one
    /// it was sealed to, or if any byte or the bound context (conference, SPI, cipher) changed.
    public func open(with authority: AuthorityPrivateKey) throws(AuthorityError) -> EKTKeyMessage {
        let aad = Self.associatedData(conference: conference, spi: spi, cipher: cipher)
        var plaintext: [UInt8]
        do {
            var recipient = try HPKE.Recipient(privateKey: authority.key, ciphersuite: Self.suite, info: Data(Self.info),
                                               encapsulatedKey: Data(encapsulatedKey))
            plaintext = [UInt8](try recipient.open(ciphertext, authenticating: aad))
        } catch {
            let reason = authority.publicKey.keyID == authorityKeyID
                ? "authentication failed (the sealed record or its conference/SPI binding was altered)"
                : "sealed to authority key \(authorityKeyID), not to \(authority.publicKey.keyID)"
            throw .unsealFailed(reason: reason)
        }
        defer { _ = plaintext.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        guard let first = plaintext.first, first == cipher.wireValue() else {
            throw .malformedSealedKey(reason: "cipher byte does not match the record")
        }
        let parsed: Result<EKTKeyMessage, EKTError> = plaintext.withUnsafeBytes { raw in
            do throws(EKTError) { return .success(try EKTKeyMessage(parsing: UnsafeRawBufferPointer(rebasing: raw[1...]))) } catch {
                return .failure(error)
            }
        }
        let message: EKTKeyMessage
        switch parsed {
        case let .success(m): message = m
        case let .failure(error): throw .malformedSealedKey(reason: "EKTKey body: \(error)")
        }
        guard message.spi == spi else { throw .malformedSealedKey(reason: "SPI \(message.spi) inside, \(spi) outside") }
        return message
    }
}

extension SealedEpochKey {
    /// A non-secret identifier of an EKTKey: the first 8 bytes of SHA-256 over a label, the
    /// SPI, the key and the master salt, in hex (the TTL is left out: a capture import knows
    /// the key but not always the TTL). It tells apart two epochs that share an SPI (a
    /// restarted Key Distributor) and lets a restarted recorder or an import recognise an epoch
    /// already stored; it reveals nothing usable about a 128- or 256-bit key.
    public static func keyID(of message: EKTKeyMessage) -> String {
        var hasher = SHA256()
        hasher.update(data: Array("percrec epoch key id v1".utf8))
        hasher.update(data: [UInt8(message.spi >> 8), UInt8(message.spi & 0xFF)])
        message.ektKeyValue.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        message.srtpMasterSalt.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().prefix(8).map { String(format: "%02x", $0) }.joined()
    }
}
