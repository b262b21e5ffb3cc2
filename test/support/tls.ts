/// <reference types="node" />
/**
 * Throwaway TLS material made with `openssl` at test time, and a redis-server that speaks TLS.
 *
 * - A CA, and a server certificate it signed for `127.0.0.1` and `localhost`;
 * - a second, unrelated CA: trusting it instead must make every connection fail.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, type RedisProcess, startRedisProcess } from "./redis-server.js";

const run = promisify(execFile);

/** The files and contents of the throwaway TLS material. */
export interface TlsFixtures {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** A CA that signed nothing here. */
  readonly wrongCaFile: string;
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly wrongCa: Buffer;
  /** Removes the files. */
  remove(): Promise<void>;
}

const NO_OPENSSL =
  "openssl was not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install -y openssl`; " +
  "macOS: `brew install openssl`) to run the TLS tests.";

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run("openssl", args, { cwd });
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") throw new Error(NO_OPENSSL);
    throw error;
  }
}

/** `openssl req` arguments for a new, unencrypted EC P-256 key. */
const NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A self-signed CA (`<name>.crt`, `<name>.key`) with an EC P-256 key, valid for a day. */
async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(
    [
      ...["req", "-x509", ...NEW_KEY],
      ...["-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "1"],
      ...["-subj", `/CN=edgelock test ${name}`],
    ],
    dir,
  );
}

/** Makes a CA, a server certificate it signs for 127.0.0.1 and localhost, and a wrong CA. */
export async function makeTlsFixtures(): Promise<TlsFixtures> {
  const dir = await mkdtemp(join(tmpdir(), "edgelock-tls-"));
  await Promise.all([makeCa(dir, "ca"), makeCa(dir, "wrong-ca")]);
  await openssl(
    ["req", ...NEW_KEY, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
    dir,
  );
  await writeFile(join(dir, "san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await openssl(
    [
      ...["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key"],
      ...["-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.cnf"],
    ],
    dir,
  );
  const file = (name: string) => join(dir, name);
  const [ca, cert, key, wrongCa] = await Promise.all(
    ["ca.crt", "server.crt", "server.key", "wrong-ca.crt"].map((name) => readFile(file(name))),
  );
  return {
    dir,
    caFile: file("ca.crt"),
    certFile: file("server.crt"),
    keyFile: file("server.key"),
    wrongCaFile: file("wrong-ca.crt"),
    ca: ca as Buffer,
    cert: cert as Buffer,
    key: key as Buffer,
    wrongCa: wrongCa as Buffer,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A redis-server with a plain port (for checks) and a TLS port. */
export interface TlsRedis {
  /** The server; its `port` and `url` are the plain ones. */
  readonly server: RedisProcess;
  readonly tlsPort: number;
  /** `rediss://127.0.0.1:<tlsPort>` */
  readonly tlsUrl: string;
}

/**
 * Starts redis-server serving TLS with `fixtures`' certificate on one port (clients need not
 * present certificates) and plain TCP on another, which the harness uses to see it is up.
 */
export async function startTlsRedisServer(fixtures: TlsFixtures): Promise<TlsRedis> {
  let tlsPort = 0;
  const server = await startRedisProcess(async (port, dir) => {
    tlsPort = await freePort();
    return [
      ...["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      ...["--daemonize", "no", "--dir", dir, "--tls-port", String(tlsPort)],
      ...["--tls-cert-file", fixtures.certFile, "--tls-key-file", fixtures.keyFile],
      ...["--tls-ca-cert-file", fixtures.caFile, "--tls-auth-clients", "no"],
    ];
  });
  return { server, tlsPort, tlsUrl: `rediss://127.0.0.1:${tlsPort}` };
}
