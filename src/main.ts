/**
 * `npm start`: loads the config, starts every role in one process, stops cleanly on SIGTERM / SIGINT.
 * `npm run worker` (`--role=worker`, or GRIDWATCH_ROLE=worker): only the SMS-sending workers, next to a main node.
 */
import { ConfigError, loadConfig, redactedConfig } from './config/load.ts';
import { createLogger } from './logger.ts';
import { GridWatch } from './system.ts';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  const roleArg = process.argv.find((a) => a.startsWith('--role='))?.slice('--role='.length);
  try {
    config = loadConfig({ env: roleArg ? { ...process.env, GRIDWATCH_ROLE: roleArg } : process.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`GridWatch cannot start: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.log.level, config.log.pretty);
  const startedAt = Date.now();
  log.info({ config: redactedConfig(config) }, 'starting');
  const system = new GridWatch(config, log);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    // a hard deadline in case something hangs: the process must end within the shutdown budget
    const hard = setTimeout(() => {
      log.error('stop took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 2000);
    hard.unref();
    system.stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  try {
    await system.start();
  } catch (err) {
    log.fatal({ err }, 'start failed');
    process.exit(1);
  }
  if (config.role === 'worker') {
    log.info({ ms: Date.now() - startedAt }, 'GridWatch worker is up: sending SMS from the notify queues');
    return;
  }
  log.info(
    {
      ms: Date.now() - startedAt,
      http: system.http.port,
      mqtt: system.broker?.ports ?? { external: system.deviceBrokerUrl('') },
    },
    `GridWatch is up: http://localhost:${system.http.port}/docs`,
  );
}

void main();
