import { request } from "node:https";
import { resolve } from "node:path";
import type { Command } from "commander";
import { EnclaveError } from "../../errors.js";
import { loadKitAs } from "../../identity/kit.js";
import { coordinatorCheck } from "../../sdk/admin-client.js";

/** Ask the coordinator for a one-time dashboard login link with an admin's certificate. */
export function registerDashboardCommand(program: Command): void {
  program
    .command("dashboard")
    .description("print a one-time login link to the coordinator's dashboard (/ui/) for a plain browser")
    .requiredOption("--kit <dir>", "an admin's startup kit")
    .option("--endpoint <url>", "the coordinator (default: the one the kit names)")
    .action(async (o: { kit: string; endpoint?: string }) => {
      const kit = await loadKitAs(o.kit, "admin");
      const base = new URL(
        o.endpoint ?? `https://${kit.config.coordinator.host}:${kit.config.coordinator.port}`,
      );
      const path = await new Promise<string>((done, fail) => {
        const req = request(
          {
            host: base.hostname,
            port: base.port,
            path: "/ui/link",
            method: "POST",
            ca: kit.caPem,
            cert: kit.credential.certPem,
            key: kit.credential.keyPem,
            // The same check as every admin verb: the project CA's certificate, valid for the host
            // dialled, naming the kit's coordinator (its name need not be a DNS name).
            checkServerIdentity: coordinatorCheck(kit),
            agent: false,
          },
          (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (c: string) => (body += c.slice(0, 4096)));
            res.on("end", () => {
              if (res.statusCode !== 200)
                return fail(
                  new EnclaveError("RPC_FAILED", `the coordinator refused the link (HTTP ${res.statusCode})`),
                );
              done((JSON.parse(body) as { path: string }).path);
            });
          },
        );
        req.on("error", () => fail(new EnclaveError("RPC_FAILED", "the coordinator cannot be reached")));
        req.end();
      });
      process.stdout.write(
        `${base.origin}${path}\n(one use, valid 5 minutes; the browser must trust the project CA, ${resolve(kit.dir, "ca.pem")})\n`,
      );
    });
}
