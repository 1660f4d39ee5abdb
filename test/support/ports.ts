/**
 * A base port for `span` consecutive ports of a test's own servers. Below
 * Linux's ephemeral range (32768 and up), and so is each port + 10000 (a
 * Redis Cluster node's bus port): a port in that range can be taken at any
 * moment by the local end of some client connection, and the server then
 * fails with "bind: Address already in use".
 */
export function testPorts(span: number): number {
  return 20_000 + Math.floor(Math.random() * (2_768 - span));
}
