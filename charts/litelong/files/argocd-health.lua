-- Argo CD health check for litelong.io's TopicDebate, BM25Index, SynthesisRun and TrainingJob.
-- Healthy once Ready; Degraded when Failed; Suspended while Waiting for the resources it refers
-- to; Progressing otherwise (and until the operator has seen the latest spec).
-- Install: resource.customizations.health.litelong.io_<Kind> in argocd-cm (docs/kubernetes.md).
local hs = {status = "Progressing", message = "Waiting for the litelong operator"}
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local conditions = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    conditions[condition.type] = condition
  end
end
local function holds(kind)
  return conditions[kind] ~= nil and conditions[kind].status == "True"
end
local function said(kind)
  local condition = conditions[kind]
  if condition == nil then
    return ""
  end
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return condition.reason or ""
end

local phase = obj.status.phase
if holds("Failed") or phase == "Failed" then
  hs.status = "Degraded"
  hs.message = said("Failed")
elseif holds("Ready") then
  hs.status = "Healthy"
  hs.message = said("Ready")
elseif holds("Waiting") or phase == "Waiting" then
  hs.status = "Suspended"
  hs.message = said("Waiting")
else
  hs.status = "Progressing"
  hs.message = said("Progressing")
  if obj.status.progress ~= nil and obj.status.progress.summary ~= nil then
    hs.message = hs.message .. " (" .. obj.status.progress.summary .. ")"
  end
end
return hs
