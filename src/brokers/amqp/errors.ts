// RabbitMQ's refusals, turned into one line that says what to fix.
import type { AmqpEndpoint } from './url.js';

/** A connection problem. `permanent` ones (login, vhost, permissions) are not retried: retrying cannot fix them. */
export class BrokerConnectionError extends Error {
  override name = 'BrokerConnectionError';
  constructor(message: string, readonly permanent: boolean, readonly reason?: string) {
    super(message);
  }
}

/** The publisher-confirm did not come back positive (nack, channel closed, timeout). */
export class PublishError extends Error {
  override name = 'PublishError';
}

const GRANT = (ep: AmqpEndpoint) => `rabbitmqctl set_permissions -p ${ep.vhost} ${ep.username} ".*" ".*" ".*"`;

function replyText(err: unknown): string {
  const m = /with message "([^"]*)"/.exec(String((err as Error)?.message ?? err));
  return m ? m[1]! : String((err as Error)?.message ?? err);
}

/** Translate an amqplib connect/handshake error into a BrokerConnectionError naming the fix. */
export function explainConnectError(err: unknown, ep: AmqpEndpoint): BrokerConnectionError {
  const msg = String((err as Error)?.message ?? err);
  const code = (err as NodeJS.ErrnoException)?.code;
  const at = `at ${ep.displayUrl}`;
  if (/ACCESS.REFUSED/.test(msg) && /Login was refused/i.test(msg)) {
    return new BrokerConnectionError(
      `RabbitMQ refused the login of user "${ep.username}" ${at} (ACCESS_REFUSED): check the user name and password in the broker URL, or set them with \`rabbitmqctl add_user ${ep.username} <password>\` / \`rabbitmqctl change_password ${ep.username} <password>\``,
      true, 'ACCESS_REFUSED');
  }
  if (/NOT_ALLOWED - vhost .* not found/.test(msg)) {
    return new BrokerConnectionError(
      `RabbitMQ has no virtual host "${ep.vhost}" ${at} (NOT_ALLOWED): create it with \`rabbitmqctl add_vhost ${ep.vhost}\` and \`${GRANT(ep)}\`, or fix the vhost in the URL`,
      true, 'VHOST_NOT_FOUND');
  }
  if (/NOT_ALLOWED - access to vhost/.test(msg)) {
    return new BrokerConnectionError(
      `User "${ep.username}" has no permission on RabbitMQ virtual host "${ep.vhost}" ${at} (NOT_ALLOWED): grant it with \`${GRANT(ep)}\``,
      true, 'NO_VHOST_PERMISSION');
  }
  if (/Handshake terminated by server|Expected ConnectionOpenOk/.test(msg)) {
    return new BrokerConnectionError(`RabbitMQ closed the connection during the handshake ${at}: ${replyText(err)}`, true, 'HANDSHAKE');
  }
  if (code === 'ECONNREFUSED') {
    return new BrokerConnectionError(`Cannot connect to RabbitMQ ${at}: connection refused (is rabbitmq-server running on ${ep.hostname}:${ep.port}?)`, false, 'ECONNREFUSED');
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new BrokerConnectionError(`Cannot connect to RabbitMQ ${at}: host "${ep.hostname}" not found`, false, code);
  }
  if (/ETIMEDOUT/.test(msg) || code === 'ETIMEDOUT') {
    return new BrokerConnectionError(`Cannot connect to RabbitMQ ${at}: no answer within ${ep.connectTimeout} s (broker_connection_timeout)`, false, 'ETIMEDOUT');
  }
  if (/certificate|SSL|TLS|self.signed/i.test(msg) || (code && code.startsWith('ERR_SSL'))) {
    return new BrokerConnectionError(`TLS handshake with RabbitMQ ${at} failed: ${msg} (see broker_use_ssl)`, true, 'TLS');
  }
  return new BrokerConnectionError(`Cannot connect to RabbitMQ ${at}: ${msg}`, false, code ?? 'UNKNOWN');
}

/** A channel-level refusal while declaring or consuming (403 on a queue, 406 inequivalent arguments). */
export function explainChannelError(err: unknown, ep: AmqpEndpoint, what: string): Error {
  const msg = String((err as Error)?.message ?? err);
  if (/ACCESS_REFUSED|ACCESS-REFUSED/.test(msg)) {
    return new BrokerConnectionError(
      `RabbitMQ refused ${what} for user "${ep.username}" in virtual host "${ep.vhost}" ${`at ${ep.displayUrl}`}: ${replyText(err)}; grant it with \`${GRANT(ep)}\``,
      true, 'ACCESS_REFUSED');
  }
  if (/PRECONDITION_FAILED|PRECONDITION-FAILED/.test(msg)) {
    return new BrokerConnectionError(
      `RabbitMQ refused ${what} ${`at ${ep.displayUrl}`}: ${replyText(err)}. The existing queue was declared with other arguments: make task_queue_max_priority / task_default_queue_type match the other workers, or delete the queue`,
      true, 'PRECONDITION_FAILED');
  }
  return new Error(`RabbitMQ error during ${what} at ${ep.displayUrl}: ${msg}`);
}
