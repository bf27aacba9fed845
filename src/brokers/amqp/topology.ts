// Celery's task-queue topology on RabbitMQ, flag for flag, so Python and Celeriac declare the same entities
// and neither side gets 406 PRECONDITION_FAILED: a durable direct exchange named after the queue, a durable
// queue, and a binding with routing key = queue name.
import type { Channel, Options } from 'amqplib';
import type { Settings } from '../../app/settings.js';
import { toFieldTable } from './field-table.js';

export interface QueueSpec {
  queue: string;
  exchange: string;
  routingKey: string;
  options: Options.AssertQueue;
}

export function isQuorum(settings: Settings): boolean {
  return settings.task_default_queue_type === 'quorum';
}

/** The queue Celery declares for `name` (task_default_queue or one created on demand). */
export function taskQueueSpec(name: string, settings: Settings, exchange?: string): QueueSpec {
  const args: Record<string, unknown> = {};
  if (settings.task_queue_max_priority != null) args['x-max-priority'] = settings.task_queue_max_priority;
  if (isQuorum(settings)) args['x-queue-type'] = 'quorum';
  return {
    queue: name,
    exchange: exchange || (name === settings.task_default_queue ? settings.task_default_exchange || name : name),
    routingKey: name,
    options: { durable: true, autoDelete: false, exclusive: false, arguments: toFieldTable(args) },
  };
}

export async function declareTaskQueue(ch: Channel, spec: QueueSpec): Promise<void> {
  await ch.assertExchange(spec.exchange, 'direct', { durable: true, autoDelete: false });
  await ch.assertQueue(spec.queue, spec.options);
  await ch.bindQueue(spec.queue, spec.exchange, spec.routingKey);
}
