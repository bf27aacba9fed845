// The fanout channel a transport without exchanges (SQLite, memory) carries remote-control replies on:
// one per client, named after the reply exchange and the client's routing key.
export function replyChannel(exchange: string, routingKey: string): string {
  return `${exchange}/${routingKey}`;
}
