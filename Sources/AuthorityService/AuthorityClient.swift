import Access
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL

/// The exporter's side of the key release: one HTTPS request to the authority.
public struct AuthorityClient: Sendable {
    public let baseURL: String
    let tls: TLSConfiguration

    /// `baseURL` must be https; `trustedCertificates` pins the authority's certificate (PEM).
    public init(baseURL: String, trustedCertificates: String?) throws(AuthorityServiceError) {
        guard let url = URL(string: baseURL), url.scheme?.lowercased() == "https", url.host != nil else {
            throw .configuration("--authority \(baseURL): must be an https:// URL (keys are never fetched over plain HTTP)")
        }
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        tls = try AuthorityTLS.clientConfiguration(trustedCertificates: trustedCertificates)
    }

    /// Asks for the keys of `conference` the token allows, sealed to `requesterPublicKey` (raw 32 bytes).
    /// Returns the response on HTTP 200; throws `.refused` with the authority's reason otherwise.
    public func requestKeys(conference: String, token: String, requesterPublicKey: [UInt8],
                            spis: [UInt16]? = nil) async throws(AuthorityServiceError) -> KeyReleaseResponse {
        let (status, body) = try await post(path: "/v1/conferences/\(escape(conference))/key-release", token: token,
                                            json: KeyReleaseRequest(requesterPublicKey: Data(requesterPublicKey).base64EncodedString(), spis: spis))
        let decoder = JSONDecoder()
        guard status == 200 else {
            if let error = try? decoder.decode(KeyReleaseErrorBody.self, from: body) {
                throw .refused(status: status, reason: error.error, refused: error.refused)
            }
            throw .refused(status: status, reason: String(decoding: body.prefix(300), as: UTF8.self), refused: [])
        }
        do { return try decoder.decode(KeyReleaseResponse.self, from: body) } catch {
            throw .badResponse("HTTP 200 without a key-release response: \(error)")
        }
    }

    /// One POST; returns the status and the body (at most 4 MiB).
    func post<T: Encodable>(path: String, token: String?, json: T) async throws(AuthorityServiceError) -> (Int, Data) {
        let url = baseURL + path
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(30))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.headers.add(name: "Content-Type", value: "application/json")
        let payload: Data
        do { payload = try JSONEncoder().encode(json) } catch { throw .badResponse("cannot encode the request: \(error)") }
        request.body = .bytes(ByteBuffer(bytes: payload))
        let result: Result<(Int, Data), AuthorityServiceError>
        do {
            let response = try await client.execute(request, timeout: .seconds(30))
            let buffer = try await response.body.collect(upTo: 4 << 20)
            result = .success((Int(response.status.code), Data(buffer: buffer)))
        } catch {
            result = .failure(.unreachable(url: url, reason: "\(error)"))
        }
        try? await client.shutdown()
        return try result.get()
    }

    func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? segment
    }
}
