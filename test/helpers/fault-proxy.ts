// A TCP proxy that can silently drop all traffic on its existing connections (a half-open socket,
// as a dead NAT or a partition leaves it) while new connections still pass.
import net from 'node:net';

export class FaultProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket; dropped: boolean }>();
  port = 0;

  constructor(private readonly targetPort: number, private readonly targetHost = '127.0.0.1') {}

  async start(): Promise<this> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost);
      const pair = { client, upstream, dropped: false };
      this.pairs.add(pair);
      client.on('data', (d) => { if (!pair.dropped) upstream.write(d); });
      upstream.on('data', (d) => { if (!pair.dropped) client.write(d); });
      const end = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server!.address() as net.AddressInfo).port;
    return this;
  }

  /** From now on, every connection open at this moment passes no bytes either way and never closes. */
  blackholeExisting(): number {
    let n = 0;
    for (const p of this.pairs) {
      if (!p.dropped) n++;
      p.dropped = true;
    }
    return n;
  }

  async stop(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
