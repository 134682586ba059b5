/**
 * A second process racing for the last units (src/supplies/issue-race.int.test.ts): opens the SQLite file another
 * process uses, says it is ready (a file `ready-<pid>` in the data dir), waits for the start signal (a file `go`),
 * then tries to issue one unit at a time and prints what it won. A file barrier rather than a start time: on a
 * busy machine a process may take longer to load than any fixed head start.
 *
 *   node --import tsx src/supplies/issue-race.child.ts <dataDir> <sqliteFile> <depotId> <itemId> <attempts>
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { systemClock } from '../clock/clock.ts';
import { RegistryError } from '../registry/port.ts';
import { SqlRegistry } from '../registry/registry.ts';
import { createDatabase } from '../store/db.ts';
import { loadSupplyConfig } from './config.ts';
import { SupplyService } from './service.ts';

const [dataDir, sqliteFile, depotId, itemId, attempts] = process.argv.slice(2);
const root = path.resolve(import.meta.dirname, '../..');
const database = await createDatabase({ sqliteFile: sqliteFile! }, dataDir!);
const registry = new SqlRegistry(database, { knownModel: () => true, sessionSweepMs: 0 });
await registry.start();
const supplies = new SupplyService({
  database,
  registry,
  clock: systemClock,
  logger: pino({ level: 'silent' }),
  config: loadSupplyConfig(
    path.join(root, 'config/supplies/catalogue.yaml'),
    path.join(root, 'config/supplies/depots.yaml'),
  ),
  settings: { checkEveryMinutes: 1440, expiringInfoDays: 90, expiringMinorDays: 30, sample: false },
  timezone: 'Asia/Shanghai',
});
await supplies.refresh();
writeFileSync(path.join(dataDir!, `ready-${process.pid}`), '');
while (!existsSync(path.join(dataDir!, 'go'))) await new Promise((r) => setTimeout(r, 5));
let won = 0;
let lost = 0;
const from = Date.now();
const tries = Array.from({ length: Number(attempts) }, (_, i) =>
  supplies
    .issue(
      { depotId: depotId!, itemId: itemId!, quantity: 1, to: { kind: 'drill', ref: `pid-${process.pid}-${i}` } },
      'race',
    )
    .then(
      () => {
        won++;
      },
      (e: unknown) => {
        if (e instanceof RegistryError && e.code === 'conflict') lost++;
        else throw e;
      },
    ),
);
await Promise.all(tries);
const to = Date.now();
await registry.stop();
await database.close();
process.stdout.write(`${JSON.stringify({ won, lost, from, to })}\n`);
