import Access
import Foundation
import Hummingbird
import HummingbirdTLS
import NIOCore
import NIOSSL

/// `percrec authority serve`: the archive authority over HTTPS (Hummingbird with TLS).
///
/// Routes (docs/access.md):
/// - `GET /v1/health`: the authority's and the token issuer's key ids.
/// - `POST /v1/conferences/{conference}/key-release`: `Authorization: Bearer <JWT>` and a
///   JSON `KeyReleaseRequest`; answers a `KeyReleaseResponse` (200) or a `KeyReleaseErrorBody`
///   (400, 401, 403, 404, 500). Every answer carries `Cache-Control: no-store`.
public enum AuthorityServer {
    /// Largest request body accepted.
    public static let maximumBody = 16 * 1024

    /// Builds the application. `onListening` receives the bound port (useful with port 0).
    public static func application(authority: KeyReleaseAuthority, host: String, port: Int, tls: TLSConfiguration,
                                   identity: (authorityKeyID: String, tokenKeyID: String),
                                   log: @escaping @Sendable (String) -> Void,
                                   onListening: @escaping @Sendable (Int) async -> Void) throws -> some ApplicationProtocol {
        let router = Router()
        router.get("/v1/health") { _, _ -> Response in
            json(200, ["status": "ok", "authority_key_id": identity.authorityKeyID, "token_key_id": identity.tokenKeyID])
        }
        router.post("/v1/conferences/:conference/key-release") { request, context -> Response in
            let conference = context.parameters.get("conference") ?? ""
            let token = bearer(request.headers[.authorization])
            var body: KeyReleaseRequest?
            if let buffer = try? await request.body.collect(upTo: maximumBody) {
                let decoder = JSONDecoder()
                body = try? decoder.decode(KeyReleaseRequest.self, from: Data(buffer: buffer))
            }
            let outcome = await authority.release(token: token, conference: conference, request: body)
            switch outcome {
            case let .success(answer):
                log("authority.release conference=\(conference) principal=\(answer.principal) role=\(answer.role) decision=\(answer.decision) "
                    + "granted=\(answer.granted.map { String($0.spi) }.joined(separator: ",")) "
                    + "refused=\(answer.refused.map { String($0.spi) }.joined(separator: ",")) audit=\(answer.auditSequence)")
                return encoded(200, answer)
            case let .failure(failure):
                log("authority.refuse conference=\(conference) status=\(failure.status) audit=\(failure.auditSequence.map(String.init) ?? "none") "
                    + "reason=\"\(failure.reason)\"")
                return encoded(failure.status, KeyReleaseErrorBody(error: failure.reason, refused: failure.refused,
                                                                    auditSequence: failure.auditSequence))
            }
        }
        return Application(router: router, server: try .tls(.http1(), tlsConfiguration: tls),
                           configuration: .init(address: .hostname(host, port: port), serverName: "percrec-authority"),
                           onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) })
    }

    static func bearer(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    static func encoded<T: Encodable>(_ status: Int, _ value: T) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{\"error\":\"encoding failed\"}".utf8)
        return response(status, data)
    }

    static func json(_ status: Int, _ object: [String: String]) -> Response { encoded(status, object) }

    static func response(_ status: Int, _ data: Data) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
