// Starts the real server binary for a Node end-to-end test: a temporary
// data directory and config, users added through the server's own
// "user add" command, the bound address read from its start-up log line.
// The process is ended by its PID when the test is done.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { once } from "node:events";

const repo = resolve(import.meta.dirname, "../..");

// serverBinary returns $XMPPWS_BIN, or builds the server into a temp dir.
export function serverBinary() {
  if (process.env.XMPPWS_BIN) return process.env.XMPPWS_BIN;
  const out = join(mkdtempSync(join(tmpdir(), "xmppws-bin-")), "xmppws");
  execFileSync("go", ["build", "-o", out, "./server"], { cwd: repo, stdio: "inherit" });
  return out;
}

// startServer writes the config (extra TOML appended), adds the users
// (name → password) and starts the server; it resolves to
// { url, stop } once the server logged its address.
export async function startServer({ extraConfig = "", users = {} } = {}) {
  const bin = serverBinary();
  const dir = mkdtempSync(join(tmpdir(), "xmppws-e2e-"));
  const cfg = join(dir, "server.toml");
  writeFileSync(cfg, `[http]\naddress = "127.0.0.1:0"\n[storage]\ndata_dir = ${JSON.stringify(join(dir, "data"))}\n${extraConfig}\n`);
  for (const [jid, password] of Object.entries(users)) {
    execFileSync(bin, ["-config", cfg, "user", "add", "-create-database", jid], { input: password + "\n" });
  }
  const proc = spawn(bin, ["-config", cfg], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const address = await new Promise((resolveAddr, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start:\n" + log)), 30000);
    proc.stderr.on("data", (chunk) => {
      log += chunk;
      const m = log.match(/msg="server started" http=(\S+)/);
      if (m) {
        clearTimeout(timer);
        resolveAddr(m[1]);
      }
    });
    proc.on("exit", (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
  });
  return {
    url: `ws://${address}/xmpp-websocket`,
    http: `http://${address}`,
    log: () => log,
    async stop() {
      if (proc.exitCode !== null) return;
      process.kill(proc.pid, "SIGTERM");
      await once(proc, "exit");
    },
  };
}
