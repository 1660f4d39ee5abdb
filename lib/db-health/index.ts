export { type MysqlHealthOptions, mysqlHealth } from './mysql-health';
export { type PostgresHealthOptions, postgresHealth } from './postgres-health';
