import { readdirSync } from "node:fs";

/**
 * The guest side of the isolated runtime, started by `/init` inside the microVM. This first version
 * announces readiness with what the guest can see of the network (it must be loopback only) and
 * exits; the task channel comes with the VMM layer.
 */
function main(): void {
  const interfaces = readdirSync("/sys/class/net").sort();
  process.stdout.write(JSON.stringify({ event: "guest.ready", node: process.version, interfaces }) + "\n");
}

main();
