/** The product end to end with the hub on PostgreSQL (a throwaway cluster of its own). */
import { useClusterForFile } from '../helpers-postgres.js';
import { productSuite } from './product-suite.js';

const cluster = useClusterForFile();

productSuite(async () => {
  const pg = await cluster();
  const database = await pg.createDatabase();
  return `postgres://${pg.config(database).user}@/${database}?host=${encodeURIComponent(pg.socketDir)}`;
});
