/**
 * Runs the in-code migrations (src/store/migrations.ts) up to the latest. Called once at start by the composition
 * root, before any module touches the store; Kysely's migration lock makes concurrent starts of several nodes on
 * one PostgreSQL safe (one migrates, the others wait and then find nothing to do).
 */
import { type Kysely, type MigrationProvider, Migrator } from 'kysely';
import { MIGRATIONS } from './migrations.ts';

const provider: MigrationProvider = { getMigrations: async () => ({ ...MIGRATIONS }) };

/** Returns the names of the migrations applied now (empty when the schema was already current). */
export async function migrateToLatest<T>(db: Kysely<T>): Promise<string[]> {
  // The migrator works on the schema, not on typed tables, so the table types do not matter here.
  const migrator = new Migrator({ db: db as unknown as Kysely<unknown>, provider });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    const cause = error instanceof Error ? error.message : String(error ?? 'unknown error');
    const which = failed ? ` ${failed.migrationName}` : '';
    throw new Error(`database migration${which} failed: ${cause}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
