// The server binary as the browser tests run it: started with a config
// file, its address read from the "server started" log line, accounts added
// with its own "user add" command, stopped by its PID. Shared by
// ui.test.mjs and failover.test.mjs; it is not a test file itself.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/**
 * startServer runs bin with cfg and resolves with {proc, log, base} once it
 * logged "server started": base is its http:// URL, log its stderr lines.
 */
export async function startServer(bin, cfg, { wait = 15_000 } = {}) {
  const proc = spawn(bin, ['-config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = [];
  const lines = createInterface({ input: proc.stderr });
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "server started" line within ${wait} ms:\n${log.join('\n')}`)), wait);
    lines.on('line', (line) => {
      log.push(line);
      const m = /msg="server started" http=(\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(`http://${m[1]}`);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before starting:\n${log.join('\n')}`));
    });
  });
  return { proc, log, base: await started };
}

/**
 * stopServer ends a server from startServer by its PID: SIGTERM (SIGKILL
 * after wait ms), or the signal given; it resolves once the process exited.
 */
export async function stopServer({ proc }, { signal = 'SIGTERM', wait = 15_000 } = {}) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  process.kill(proc.pid, signal);
  const timer = signal === 'SIGKILL' ? null : setTimeout(() => process.kill(proc.pid, 'SIGKILL'), wait);
  await exited;
  clearTimeout(timer);
}

/** addUser runs `user add` for {jid, password} with the password on stdin. */
export async function addUser(bin, cfg, { jid, password }) {
  await new Promise((resolve, reject) => {
    const p = spawn(bin, ['-config', cfg, 'user', 'add', '-create-database', jid], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`user add ${jid} exited ${code}: ${out}`))));
    p.stdin.end(`${password}\n`);
  });
}
