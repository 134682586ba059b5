/** Picks the time-series adapter the configuration asks for. */
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logger.ts';
import { InfluxTimeSeries } from './influx.ts';
import type { TimeSeriesStore } from './port.ts';
import type { SpillSettings } from './spill.ts';
import { SqliteTimeSeries } from './sqlite.ts';

export type { TimeSeriesStore } from './port.ts';

export function createTimeSeries(cfg: Config['timeseries'], dataDir: string, log: Logger): TimeSeriesStore {
  const { enabled, dir, ...spillRest } = cfg.spill;
  const spill: SpillSettings | undefined = enabled ? { ...spillRest, dir: path.resolve(dataDir, dir) } : undefined;
  if (cfg.driver === 'influx') {
    const { url, token } = cfg.influx;
    if (!url || !token) {
      throw new Error(
        `timeseries.driver is "influx" but ${!url ? 'INFLUX_URL' : 'INFLUX_TOKEN'} is not set ` +
          '(set INFLUX_URL and INFLUX_TOKEN, or use driver "sqlite")',
      );
    }
    return new InfluxTimeSeries({ ...cfg.influx, url, token, spill }, log.child({ module: 'timeseries' }));
  }
  return new SqliteTimeSeries(
    { ...cfg.sqlite, file: path.resolve(dataDir, cfg.sqlite.file), spill },
    log.child({ module: 'timeseries' }),
  );
}
