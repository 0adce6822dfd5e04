-- wrk script for bench/ingest.py: Alertmanager's `POST /api/v2/alerts` body (a JSON array of
-- alerts, what Prometheus sends), posted to Tocsin's Prometheus endpoint and to Alertmanager alike.
--
--   wrk -s bench/alerts_v2.lua URL -- MODE SIZE RUN STARTS_AT ENDS_AT RESEND_BATCHES
--
-- MODE "new": every request carries SIZE alerts never sent before (labels: RUN, the wrk thread's
-- id, a per-thread request counter and the index in the batch). MODE "resend": every request
-- carries one of RESEND_BATCHES fixed batches of SIZE alerts (labels: batch number and index),
-- which bench/ingest.py sent once beforehand, so each is a re-send of a firing alert.
-- Every non-2xx answer is counted (a server that fails fast must not look fast); done() prints
-- one line "BENCH-JSON {...}" for bench/ingest.py to read.

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  table.insert(threads, thread)
  next_id = next_id + 1
end

local function alert(labels, starts_at, ends_at)
  local parts = {}
  for _, pair in ipairs(labels) do
    parts[#parts + 1] = string.format('"%s":"%s"', pair[1], pair[2])
  end
  return '{"labels":{' .. table.concat(parts, ",") .. '},'
    .. '"annotations":{"summary":"Bench alert","description":"Synthetic load from wrk"},'
    .. '"startsAt":"' .. starts_at .. '","endsAt":"' .. ends_at .. '",'
    .. '"generatorURL":"http://prometheus.example.org:9090/graph?g0.expr=up"}'
end

local function resend_body(batch)
  local alerts = {}
  for i = 0, size - 1 do
    alerts[#alerts + 1] = alert({
      {"alertname", "BenchResend"},
      {"batch", tostring(batch)},
      {"i", tostring(i)},
      {"job", "node"},
      {"severity", "warning"},
    }, starts_at, ends_at)
  end
  return "[" .. table.concat(alerts, ",") .. "]"
end

function init(args)
  mode = args[1]
  size = tonumber(args[2])
  run = args[3]
  starts_at = args[4]
  ends_at = args[5]
  resend_batches = tonumber(args[6] or "1")
  sent = 0
  ok = 0
  non2xx = 0
  first_error = ""
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if mode == "resend" then
    bodies = {}
    for b = 0, resend_batches - 1 do
      bodies[b + 1] = resend_body(b)
    end
  end
end

function request()
  sent = sent + 1
  local body
  if mode == "resend" then
    body = bodies[((id + sent) % resend_batches) + 1]
  else
    local alerts = {}
    for i = 0, size - 1 do
      alerts[#alerts + 1] = alert({
        {"alertname", "BenchNew"},
        {"run", run},
        {"thread", tostring(id)},
        {"request", tostring(sent)},
        {"i", tostring(i)},
        {"instance", "host-" .. i .. ":9100"},
        {"job", "node"},
        {"severity", "warning"},
      }, starts_at, ends_at)
    end
    body = "[" .. table.concat(alerts, ",") .. "]"
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    non2xx = non2xx + 1
    if first_error == "" then
      first_error = status .. " " .. string.sub(body or "", 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local total_ok, total_non2xx, error_sample = 0, 0, ""
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_non2xx = total_non2xx + thread:get("non2xx")
    if error_sample == "" then
      error_sample = thread:get("first_error")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"ok":%d,"non2xx":%d,"socket_errors":%d,'
      .. '"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"error_sample":"%s"}\n',
    summary.requests, summary.duration, total_ok, total_non2xx,
    e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max,
    string.gsub(error_sample, '[^%w %.:,;_%-/()%[%]=]', "?")
  ))
end
