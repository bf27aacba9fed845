// AMQP topic matching for the transports without exchanges (SQLite, memory): a binding key's words are
// separated by '.', '*' stands for one word and '#' for zero or more.

/** Whether `routingKey` matches the topic `bindingKey` ('#' matches everything). */
export function topicMatches(bindingKey: string, routingKey: string): boolean {
  if (bindingKey === '#') return true;
  return match(bindingKey.split('.'), 0, routingKey.split('.'), 0);
}

function match(b: string[], i: number, r: string[], j: number): boolean {
  // Iterative over plain words, recursive only at '#' (binding keys are short).
  for (; i < b.length; i++, j++) {
    const w = b[i]!;
    if (w === '#') {
      if (i === b.length - 1) return true;
      for (let k = j; k <= r.length; k++) if (match(b, i + 1, r, k)) return true;
      return false;
    }
    if (j >= r.length) return false;
    if (w !== '*' && w !== r[j]) return false;
  }
  return j === r.length;
}
