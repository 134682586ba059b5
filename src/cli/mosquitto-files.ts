/**
 * `npm run mosquitto:files -- --out /etc/mosquitto/gridwatch [--owner mosquitto] [--pid-file /run/mosquitto.pid]`
 *
 * Writes mosquitto's `password_file` and `acl_file` from the registry (src/broker/mosquitto-files.ts), opened as
 * the service opens it (same config and environment). Devices without a mosquitto hash (provisioned before it was
 * kept) are listed; `--rotate-missing <secrets.json>` gives them new secrets first, written to a 0600 file (never
 * printed), after which their old secrets stop working everywhere. With `--pid-file` the running mosquitto is sent
 * SIGHUP so that it re-reads both files. Exit codes: 0 written, 1 written but devices need a rotation, 2 usage or
 * error.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const USAGE =
  'usage: npm run mosquitto:files -- --out <dir> [--owner <user>] [--pid-file <mosquitto pid file>]\n' +
  '                                  [--rotate-missing <secrets.json>]\n' +
  'Writes <dir>/password_file and <dir>/acl_file (mode 0600) for mosquitto; see docs/brokers.md.\n';

function ownerOf(user: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      owner: { type: 'string' },
      'pid-file': { type: 'string' },
      'rotate-missing': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || !values.out) {
    process.stderr.write(USAGE);
    return values.help ? 0 : 2;
  }
  const out = path.resolve(values.out);
  if (!existsSync(out)) {
    process.stderr.write(`${out} does not exist\n`);
    return 2;
  }
  const owner = values.owner ? ownerOf(values.owner) : undefined;

  const { loadConfig } = await import('../config/load.ts');
  const { createDatabase } = await import('../store/db.ts');
  const { migrateToLatest } = await import('../store/migrate.ts');
  const { SqlRegistry } = await import('../registry/registry.ts');
  const { writeSecretsFile } = await import('../registry/seed.ts');
  const { getModel } = await import('../../devices/index.ts');
  const { buildMosquittoFiles, reloadMosquitto, writeMosquittoFiles } = await import('../broker/mosquitto-files.ts');
  const cfg = loadConfig();
  const database = await createDatabase(cfg.database, cfg.dataDir);
  try {
    await migrateToLatest(database.db);
    const registry = new SqlRegistry(database, { knownModel: (id) => getModel(id) !== undefined });
    let accounts = await registry.mosquittoAccounts();
    const rotate = values['rotate-missing'];
    if (rotate) {
      const missing = accounts.filter((a) => !a.disabled && !a.mosquittoHash);
      const rotated = [];
      try {
        for (const a of missing) {
          const info = await registry.getDevice(a.id);
          const { secret } = await registry.rotateDeviceSecret(a.id);
          rotated.push({ deviceId: a.id, model: info?.model ?? '', secret });
        }
      } finally {
        // also when the database fails half-way: the secrets already changed must not be lost
        if (rotated.length > 0) await writeSecretsFile(path.resolve(rotate), { deviceSecrets: rotated });
      }
      if (rotated.length > 0)
        process.stdout.write(`${rotated.length} device secret(s) rotated; the new ones are in ${rotate} (0600)\n`);
      accounts = await registry.mosquittoAccounts();
    }
    const files = await buildMosquittoFiles({
      baseTopic: cfg.mqtt.baseTopic,
      devices: accounts,
      service: { username: cfg.mqtt.username, password: cfg.mqtt.password },
    });
    const written = await writeMosquittoFiles(out, files, owner);
    process.stdout.write(
      `${written.passwordFile}: ${files.devices} device(s)${cfg.mqtt.username ? ' and the service account' : ''}\n` +
        `${written.aclFile}: device patterns${cfg.mqtt.username ? ' and the service account' : ''}\n`,
    );
    if (files.disabled.length > 0) process.stdout.write(`left out, disabled: ${files.disabled.join(' ')}\n`);
    if (values['pid-file']) {
      const pid = await reloadMosquitto(values['pid-file']);
      process.stdout.write(`mosquitto (pid ${pid}) told to reload (SIGHUP)\n`);
    }
    if (files.needRotation.length > 0) {
      process.stderr.write(
        `${files.needRotation.length} device(s) have no mosquitto hash (provisioned before it was kept) and cannot ` +
          `log in to mosquitto until their secret is rotated (--rotate-missing <secrets.json>): ` +
          `${files.needRotation.join(' ')}\n`,
      );
      return 1;
    }
    return 0;
  } finally {
    await database.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`mosquitto:files: ${(e as Error).message}\n`);
      process.exit(2);
    },
  );
}
