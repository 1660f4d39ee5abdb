export { fenceDdl, type FenceDialect } from './fence-ddl';
export type {
  FenceCallOptions,
  FenceQuery,
  FenceTransaction,
} from './fence-transaction';
