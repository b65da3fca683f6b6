import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EnclaveError } from "../errors.js";
import { AgentService } from "../gen/agent/v1/agent_pb.js";
import { peerIdentity } from "../identity/certificates.js";
import type { Kit } from "../identity/kit.js";
import { SdkError } from "./errors.js";

export type AdminClient = Client<typeof AgentService>;

/**
 * The coordinator's certificate must be the project CA's (the transport trusts only it), valid
 * for the host dialled, and name the kit's coordinator in the coordinator role.
 */
export function coordinatorCheck(kit: Kit) {
  return (host: string, cert: PeerCertificate): Error | undefined => {
    const hostProblem = checkServerIdentity(host, cert);
    if (hostProblem) return hostProblem;
    const id = peerIdentity(cert);
    if (!id || id.role !== "coordinator" || id.name !== kit.config.coordinator.name)
      return new Error("the server's certificate does not name the project's coordinator");
    return undefined;
  };
}

/**
 * agent.v1.AgentService as the kit's participant (gRPC over mTLS with the kit's certificate) at
 * `endpoint`, by default the coordinator the kit names.
 */
export function adminClient(kit: Kit, endpoint?: string): AdminClient {
  const { host, port } = kit.config.coordinator;
  return createClient(
    AgentService,
    createGrpcTransport({
      baseUrl: endpoint ?? `https://${host}:${port}`,
      nodeOptions: {
        ca: kit.caPem,
        cert: kit.credential.certPem,
        key: kit.credential.keyPem,
        checkServerIdentity: coordinatorCheck(kit),
      },
    }),
  );
}

/**
 * A failed call as a typed error: the coordinator's own code and message when it refused (the
 * `enclave-error-code` header), COORDINATOR_UNAVAILABLE when it could not be reached, RPC_FAILED
 * otherwise. Nothing of the transport's internals is passed on.
 */
export function rpcError(err: unknown): EnclaveError {
  if (err instanceof EnclaveError) return err;
  if (!(err instanceof ConnectError)) return new SdkError("RPC_FAILED", "the call to the coordinator failed");
  const code = err.metadata.get("enclave-error-code");
  if (code) return new EnclaveError(code, err.rawMessage.replace(`${code}: `, ""));
  if (err.code === Code.Unavailable)
    return new SdkError(
      "COORDINATOR_UNAVAILABLE",
      "the coordinator cannot be reached (connection refused or lost)",
    );
  return new SdkError("RPC_FAILED", `the call to the coordinator failed (${Code[err.code]})`);
}
