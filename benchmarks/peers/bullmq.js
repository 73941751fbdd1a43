// BullMQ driver: one scenario, one JSON result line (same arguments as peers/_common.py).
// Queue.add one at a time (single), many add() in flight (pipelined), addBulk of 1,000 (bulk),
// and the idiomatic Worker at concurrency 10 (processing, latency). BullMQ's defaults are kept,
// including keeping completed jobs in Redis.
"use strict";

const { Queue, Worker } = require("bullmq");
const IORedis = require("ioredis");
const { performance } = require("node:perf_hooks");

function parseArgs(argv) {
  const args = {
    scenario: "", jobs: 0, url: "redis://127.0.0.1:6379/1", queue: "bench", concurrency: 10,
    window: 1000, batch: 1000, rate: 500, payloadBytes: 10240,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const value = argv[i + 1];
    args[key] = typeof args[key] === "number" ? Number(value) : value;
  }
  return args;
}

const nowS = () => (performance.timeOrigin + performance.now()) / 1000;

function payload(i, args) {
  return args.scenario.startsWith("large") ? { i, s: "x".repeat(args.payloadBytes) } : { i };
}

function stopwatch() {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return (jobs, extra = {}) => {
    const used = process.cpuUsage(cpu);
    return {
      jobs, seconds: (performance.now() - wall) / 1000,
      client_cpu_s: (used.user + used.system) / 1e6, ...extra,
    };
  };
}

function percentiles(samples) {
  const steady = samples.slice(Math.floor(samples.length / 50)).sort((a, b) => a - b);
  if (steady.length === 0) return {};
  const last = steady.length - 1;
  const at = (q) => steady[Math.round(q * last)] * 1000;
  return { p50_ms: at(0.5), p99_ms: at(0.99), max_ms: steady[last] * 1000 };
}

async function bulk(queue, args) {
  for (let start = 0; start < args.jobs; start += args.batch) {
    const jobs = [];
    for (let i = start; i < Math.min(start + args.batch, args.jobs); i++) {
      jobs.push({ name: "j", data: payload(i, args) });
    }
    await queue.addBulk(jobs);
  }
}

function drain(args, connection, handler) {
  return new Promise((resolve) => {
    let done = 0;
    let wall = 0;
    let cpu = null;
    const worker = new Worker(args.queue, async (job) => {
      if (cpu === null) {
        wall = performance.now();
        cpu = process.cpuUsage();
      }
      if (handler) handler(job);
    }, { connection, concurrency: args.concurrency });
    worker.on("completed", () => {
      done += 1;
      if (done === args.jobs) {
        const used = process.cpuUsage(cpu);
        const result = {
          // The first job started the clock before it ran: it is not counted.
          jobs: done - 1, seconds: (performance.now() - wall) / 1000,
          client_cpu_s: (used.user + used.system) / 1e6,
        };
        worker.close().then(() => resolve(result));
      }
    });
  });
}

async function latency(args, queue, connection) {
  const samples = [];
  const finished = drain(args, connection, (job) => samples.push(nowS() - job.data.t));
  await new Promise((r) => setTimeout(r, 200)); // let the worker connect
  const start = performance.now() + 50;
  for (let i = 0; i < args.jobs; i++) {
    const delay = start + (i * 1000) / args.rate - performance.now();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    await queue.add("j", { i, t: nowS() });
  }
  const seconds = (performance.now() - start) / 1000;
  await finished;
  return { jobs: args.jobs, seconds, received: samples.length, ...percentiles(samples) };
}

async function measure(args, queue, connection) {
  switch (args.scenario) {
    case "single": {
      const watch = stopwatch();
      for (let i = 0; i < args.jobs; i++) await queue.add("j", payload(i, args));
      return watch(args.jobs);
    }
    case "pipelined": {
      const watch = stopwatch();
      let next = 0;
      const lane = async () => {
        while (next < args.jobs) await queue.add("j", payload(next++, args));
      };
      await Promise.all(Array.from({ length: Math.min(args.window, args.jobs) }, lane));
      return watch(args.jobs);
    }
    case "bulk":
    case "large_push": {
      const watch = stopwatch();
      await bulk(queue, args);
      return watch(args.jobs);
    }
    case "process":
    case "large_process":
      await bulk(queue, args);
      return drain(args, connection, null);
    case "latency":
      return latency(args, queue, connection);
    default:
      throw new Error(`unknown scenario ${args.scenario}`);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const connection = new IORedis(args.url, { maxRetriesPerRequest: null });
  await connection.flushdb();
  const queue = new Queue(args.queue, { connection });
  const result = await measure(args, queue, connection);
  if (result.jobs && result.seconds) result.rate = result.jobs / result.seconds;
  await queue.close();
  await connection.flushdb();
  await connection.quit();
  process.stdout.write(JSON.stringify({ system: "bullmq", scenario: args.scenario, ...result }) + "\n");
}

main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
