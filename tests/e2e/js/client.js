#!/usr/bin/env node
// Drives a Kafka broker with KafkaJS for Cairn's end-to-end tests. Each command prints JSON
// lines on stdout; KafkaJS's log and errors go to stderr, and a failure exits with status 1.
//
//   node client.js --bootstrap HOST:PORT create-topic --topic T --partitions N [--config k=v]...
//   node client.js --bootstrap HOST:PORT describe-topic --topic T
//   node client.js --bootstrap HOST:PORT describe-config --topic T
//   node client.js --bootstrap HOST:PORT produce --topic T --count N [--codec C] [--prefix P]
//   node client.js --bootstrap HOST:PORT consume --topic T --count N [--linger-ms MS]
//   node client.js --bootstrap HOST:PORT group-consume --topic T --group G [--count N] [--linger-ms MS]
//   node client.js --bootstrap HOST:PORT offsets-for-time --topic T --timestamp MS
//
// Every command gives up with an error after --timeout-ms (default 60000).
// offsets-for-time with --timestamp -2 asks for each partition's first offset (log start).
//
// Everything not named on the command line is KafkaJS's default.
'use strict'

const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4 = require('lz4js')
const zstd = require('@mongodb-js/zstd')

// KafkaJS compresses with gzip itself; the other codecs are plugins. Snappy is the common
// kafkajs-snappy package; LZ4 (frame format, as Kafka uses) and zstd are wrapped here.
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress(encoder) {
    return Buffer.from(lz4.compress(encoder.buffer))
  },
  async decompress(buffer) {
    return Buffer.from(lz4.decompress(buffer))
  },
})
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress(encoder) {
    return zstd.compress(encoder.buffer)
  },
  async decompress(buffer) {
    return zstd.decompress(buffer)
  },
})

const CODECS = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

function emit(value) {
  process.stdout.write(JSON.stringify(value) + '\n')
}

function fail(message) {
  process.stderr.write(`error: ${message}\n`)
  process.exit(1)
}

// --name value pairs; --config may repeat.
function parseArgs(argv) {
  const options = { config: {} }
  const positional = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (!arg.startsWith('--')) {
      positional.push(arg)
      continue
    }
    const name = arg.slice(2)
    const value = argv[++i]
    if (value === undefined) fail(`${arg} needs a value`)
    if (name === 'config') {
      const eq = value.indexOf('=')
      if (eq < 0) fail(`--config wants KEY=VALUE, got ${value}`)
      options.config[value.slice(0, eq)] = value.slice(eq + 1)
    } else {
      options[name.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = value
    }
  }
  return { command: positional[0], options }
}

// Key, value and header of the i-th produced record; the tests compute the same.
const recordKey = i => `key-${i % 7}`
const recordValue = (prefix, i) => `${prefix}-${i} `.repeat(1 + (i % 20))

function toRecord({ partition, message }) {
  const headers = {}
  for (const [name, value] of Object.entries(message.headers || {})) {
    headers[name] = value.toString()
  }
  return {
    partition,
    offset: Number(message.offset),
    key: message.key === null ? null : message.key.toString(),
    value: message.value.toString(),
    headers,
    timestamp: Number(message.timestamp),
  }
}

async function createTopic(kafka, { topic, partitions, config }) {
  const admin = kafka.admin()
  await admin.connect()
  const created = await admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic,
        numPartitions: Number(partitions || 1),
        replicationFactor: 1,
        configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
      },
    ],
  })
  if (!created) fail(`topic ${topic} already exists`)
  emit({ created: topic })
  await admin.disconnect()
}

// Lists the cluster's topics and describes one: its partitions and their leaders.
async function describeTopic(kafka, { topic }) {
  const admin = kafka.admin()
  await admin.connect()
  const topics = (await admin.listTopics()).sort()
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
  const leaders = {}
  for (const p of metadata.topics[0].partitions) leaders[p.partitionId] = p.leader
  emit({ topics, leaders })
  await admin.disconnect()
}

async function describeConfig(kafka, { topic }) {
  const admin = kafka.admin()
  await admin.connect()
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2 /* TOPIC */, name: topic }],
  })
  const configs = {}
  for (const entry of resources[0].configEntries) configs[entry.configName] = entry.configValue
  emit({ configs })
  await admin.disconnect()
}

// Sends `count` records in concurrent send() calls of 50 records each (KafkaJS's default
// partitioner and timestamps; the calls share one connection, pipelined), and prints each
// call's base offset per partition.
//
// With --pace-ms N the sends go one after another, N ms apart, from an idempotent producer
// (KafkaJS's `idempotent: true`: acks=all and retries without duplicates), so that a run
// lasts long enough to span a fault in the cluster; each send then writes to one partition
// (the sends take the partitions in turn, of --partitions): KafkaJS 2.2.4 retries a send
// per broker, not per partition, so a send to several leaders can skip or repeat one
// partition's records when leadership moves between its attempts (kafkajs#1303, #1798).
async function produce(kafka, { topic, count, codec = 'none', prefix = 'value', paceMs, partitions }) {
  if (!(codec in CODECS)) fail(`unknown codec ${codec}`)
  const paced = paceMs !== undefined
  const producer = kafka.producer(paced ? { idempotent: true, maxInFlightRequests: 1 } : {})
  await producer.connect()
  const sends = []
  for (let first = 0; first < Number(count); first += 50) {
    const last = Math.min(first + 50, Number(count)) - 1
    const messages = []
    for (let i = first; i <= last; i++) {
      const message = { key: recordKey(i), value: recordValue(prefix, i), headers: { n: String(i) } }
      if (paced) message.partition = (first / 50) % Number(partitions || 1)
      messages.push(message)
    }
    const send = producer.send({ topic, compression: CODECS[codec], messages }).then(results => {
      for (const r of results) {
        emit({ first, last, partition: r.partition, base_offset: Number(r.baseOffset) })
      }
    })
    if (paced) {
      await send
      await new Promise(resolve => setTimeout(resolve, Number(paceMs)))
    } else {
      sends.push(send)
    }
  }
  await Promise.all(sends)
  await producer.disconnect()
}

// Runs a consumer in `group` (from the beginning when the group has no committed offset)
// until `count` records were processed (then `linger` ms longer) or SIGTERM, then
// disconnects. KafkaJS commits what was processed after each batch and when it stops.
async function groupConsume(kafka, { topic, group, count = 0, lingerMs = 0 }) {
  const limit = Number(count)
  const linger = Number(lingerMs)
  const consumer = kafka.consumer({ groupId: group })
  let member = null
  let joins = 0
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    member = payload.memberId
    joins++
    emit({ event: 'assigned', member, generation: joins, partitions: payload.memberAssignment })
  })
  let stopping = null
  const stop = () => {
    // consumer.disconnect() stops the fetch loop at once (before the next message), waits
    // for the current batch, commits, leaves the group.
    stopping = stopping || consumer.disconnect()
    return stopping
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let got = 0
  let done
  const finished = new Promise(resolve => {
    done = resolve
  })
  await consumer.run({
    eachMessage: async payload => {
      emit({ event: 'record', member, generation: joins, ...toRecord(payload) })
      got++
      if (got !== limit) return
      // Stopping here, synchronously, ends the fetch loop before the next message, so
      // nothing after this record is processed (and committed) unseen.
      if (linger === 0) stop().then(done)
      else setTimeout(() => stop().then(done), linger)
    },
  })
  consumer.on(consumer.events.STOP, () => done())
  await finished
  await stopping
  emit({ event: 'closed' })
}

// Every record of the topic from the beginning, read by a consumer of a fresh group (KafkaJS
// has no group-less consumer), until `count` arrived and `linger` ms more.
async function consume(kafka, options) {
  await groupConsume(kafka, { ...options, group: `read-${process.pid}-${Date.now()}` })
}

async function offsetsForTime(kafka, { topic, timestamp }) {
  const admin = kafka.admin()
  await admin.connect()
  const offsets = {}
  if (Number(timestamp) === -2) {
    for (const p of await admin.fetchTopicOffsets(topic)) offsets[p.partition] = Number(p.low)
  } else {
    const found = await admin.fetchTopicOffsetsByTimestamp(topic, Number(timestamp))
    for (const p of found) offsets[p.partition] = Number(p.offset)
  }
  emit({ offsets })
  await admin.disconnect()
}

const COMMANDS = {
  'create-topic': createTopic,
  'describe-topic': describeTopic,
  'describe-config': describeConfig,
  produce,
  consume,
  'group-consume': groupConsume,
  'offsets-for-time': offsetsForTime,
}

async function main() {
  const { command, options } = parseArgs(process.argv.slice(2))
  const run = COMMANDS[command]
  if (!run) fail(`unknown command ${command}; one of ${Object.keys(COMMANDS).join(', ')}`)
  if (!options.topic) fail('--topic is required')
  const timeout = Number(options.timeoutMs || 60000)
  setTimeout(() => fail(`${command} timed out after ${timeout} ms`), timeout).unref()
  const kafka = new Kafka({
    clientId: 'cairn-e2e',
    brokers: (options.bootstrap || '127.0.0.1:9092').split(','),
    logLevel: process.env.KAFKAJS_LOG_LEVEL === 'debug' ? logLevel.DEBUG : logLevel.WARN,
  })
  await run(kafka, options)
}

// Exits once the command is done: KafkaJS may leave retry timers behind (a reconnect to a
// node that was killed) that would keep the process alive for up to half a minute.
main()
  .then(() => process.exit(0))
  .catch(e => fail(e.stack || String(e)))
