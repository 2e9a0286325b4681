// The JobPrepRelease flow with Microsoft's JavaScript SDK (@azure/batch 10.x), left at its
// default api-version: pool, job with preparation and release tasks, tasks, wait, each node's
// shared file, terminate, preparation/release status, delete job and pool.
// Reads AZURE_BATCH_ENDPOINT, AZURE_BATCH_ACCOUNT, AZURE_BATCH_ACCESS_KEY, POOL_ID, JOB_ID;
// prints one JSON document on stdout; exits 1 on any error (the error on stderr).
"use strict";
const { BatchServiceClient, BatchSharedKeyCredentials } = require("@azure/batch");

const env = process.env;
const poolId = env.POOL_ID;
const jobId = env.JOB_ID;
const shared = "job_prep_and_release.txt";
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what, check) {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function all(first, next) {
  let page = await first();
  const items = [...page];
  while (page.odatanextLink) {
    page = await next(page.odatanextLink);
    items.push(...page);
  }
  return items;
}

async function text(response) {
  const chunks = [];
  for await (const chunk of response.readableStreamBody) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

async function main() {
  const credentials = new BatchSharedKeyCredentials(env.AZURE_BATCH_ACCOUNT, env.AZURE_BATCH_ACCESS_KEY);
  const client = new BatchServiceClient(credentials, env.AZURE_BATCH_ENDPOINT);
  const report = { apiVersion: client.apiVersion };

  await client.pool.add({
    id: poolId,
    vmSize: "standard_d1_v2",
    targetDedicatedNodes: 2,
    virtualMachineConfiguration: {
      imageReference: { publisher: "canonical", offer: "ubuntu-24_04-lts", sku: "server", version: "latest" },
      nodeAgentSKUId: "batch.node.ubuntu 24.04",
    },
  });
  const listNodes = () => all(() => client.computeNode.list(poolId), (l) => client.computeNode.listNext(l));
  await waitFor("idle nodes", async () => {
    const nodes = await listNodes();
    return nodes.length === 2 && nodes.every((n) => n.state === "idle");
  });

  await client.job.add({
    id: jobId,
    poolInfo: { poolId },
    jobPreparationTask: {
      commandLine: `/bin/bash -c 'echo "$AZ_BATCH_NODE_ID tasks:" > "$AZ_BATCH_NODE_SHARED_DIR/${shared}"'`,
      waitForSuccess: true,
      rerunOnNodeRebootAfterSuccess: true,
    },
    jobReleaseTask: {
      commandLine: `/bin/bash -c 'rm "$AZ_BATCH_NODE_SHARED_DIR/${shared}"'`,
    },
  });
  const tasks = [];
  for (let i = 1; i <= 8; i++) {
    const id = `task${String(i).padStart(3, "0")}`;
    tasks.push({ id, commandLine: `/bin/bash -c 'echo "${id}" >> "$AZ_BATCH_NODE_SHARED_DIR/${shared}"'` });
  }
  const added = await client.task.addCollection(jobId, tasks);
  report.added = added.value.map((r) => [r.taskId, r.status]);

  const listTasks = () => all(() => client.task.list(jobId), (l) => client.task.listNext(l));
  await waitFor("completed tasks", async () => (await listTasks()).every((t) => t.state === "completed"));
  report.tasks = (await listTasks()).map((t) => ({
    id: t.id, node: t.nodeInfo.nodeId, exitCode: t.executionInfo.exitCode,
  }));
  const stdout = await client.file.getFromTask(jobId, "task001", "stdout.txt");
  report.stdoutType = stdout._response.headers.get("content-type");

  report.files = {};
  for (const node of await listNodes()) {
    try {
      const file = await client.file.getFromComputeNode(poolId, node.id, `shared/${shared}`);
      report.files[node.id] = await text(file);
    } catch (error) {
      if (error.statusCode !== 404) throw error;
      report.files[node.id] = null;
    }
  }

  await client.job.terminate(jobId);
  await waitFor("job completed", async () => (await client.job.get(jobId)).state === "completed");
  const statuses = await all(
    () => client.job.listPreparationAndReleaseTaskStatus(jobId),
    (l) => client.job.listPreparationAndReleaseTaskStatusNext(l),
  );
  report.prepRelease = statuses.map((s) => ({
    node: s.nodeId,
    preparation: s.jobPreparationTaskExecutionInfo && s.jobPreparationTaskExecutionInfo.exitCode,
    release: s.jobReleaseTaskExecutionInfo && s.jobReleaseTaskExecutionInfo.exitCode,
  }));

  await client.job.deleteMethod(jobId);
  await client.pool.deleteMethod(poolId);
  await waitFor("pool deleted", async () => !(await client.pool.exists(poolId)).body);
  report.poolDeleted = true;
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch((error) => {
  const body = error.response ? error.response.bodyAsText : "";
  process.stderr.write(`${error.statusCode || ""} ${error.code || ""} ${error.message}\n${body || ""}\n`);
  process.exit(1);
});
