/** Thrown for anything the user can fix; printed without a stack. */
export class CliError extends Error {}
