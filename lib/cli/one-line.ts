/**
 * Stored text (an error, a run id, params) as one line of a terminal: its
 * control characters (C0, DEL and C1, where ESC and CSI start the sequences
 * that move the cursor or recolour the screen) become spaces.
 */
export const oneLine = (text: string): string =>
  // eslint-disable-next-line no-control-regex
  text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
