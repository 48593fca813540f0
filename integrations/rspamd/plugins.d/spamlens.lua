--[[
spamlens for rspamd: sends each message (up to max_size) to `spamlens serve`'s POST /v1/scan and
adds symbols for what spamlens found:

  SPAMLENS_IMAGE_SPAM  an image classified spam (options: image:p(spam)); weight = the highest p(spam)
  SPAMLENS_IMAGE_AD    an image classified ad (options: image:p(ad)); weight = the highest p(ad)
  SPAMLENS_TEXT_SPAM   the CLA_ANN text filter (which also reads the words drawn in the images)
                       says spam (options: score/threshold and the strongest tokens)

Mail must keep flowing: when spamlens is down, slow, overloaded or answers an error, the plug-in
logs a warning and adds no symbol, so the message is scored by the other rules alone.

Installed as $LOCAL_CONFDIR/plugins.d/spamlens.lua; rspamd loads it when the configuration has a
`spamlens` section (integrations/rspamd/rspamd.conf.local includes local.d/spamlens.conf there).
]]

local N = 'spamlens'

local rspamd_http = require "rspamd_http"
local rspamd_logger = require "rspamd_logger"
local lua_util = require "lua_util"
local ucl = require "ucl"

local settings = {
  -- spamlens serve's scan endpoint (`spamlens serve --listen 127.0.0.1:8080`).
  url = 'http://127.0.0.1:8080/v1/scan',
  -- Bearer token (spamlens serve --token-file); nil when the server needs none.
  token = nil,
  -- Seconds to wait for spamlens (it reads the text in every image: budget a second per image).
  timeout = 15.0,
  -- Messages larger than this (bytes) are not sent.
  max_size = 20 * 1024 * 1024,
  -- Send only messages with at least one image part (the text filter then sees only those).
  only_with_images = false,
  symbol_image_spam = 'SPAMLENS_IMAGE_SPAM',
  symbol_image_ad = 'SPAMLENS_IMAGE_AD',
  symbol_text_spam = 'SPAMLENS_TEXT_SPAM',
  -- Scores of the symbols (an image symbol's score is scaled by the image's probability).
  score_image_spam = 6.0,
  score_image_ad = 1.0,
  score_text_spam = 4.0,
  -- Symbol group, for group limits and the web UI.
  group = 'spamlens',
}

-- Whether the message has an image part (inline or attached).
local function has_image(task)
  for _, part in ipairs(task:get_parts() or {}) do
    if part:is_image() then
      return true
    end
    local mtype = part:get_type()
    if mtype == 'image' then
      return true
    end
  end
  return false
end

-- A name for the message in spamlens' logs: its queue id, else its Message-ID, in URL-safe characters.
local function message_name(task)
  local id = task:get_queue_id()
  if not id or id == 'undef' then
    id = task:get_message_id()
  end
  if not id or id == 'undef' then
    id = task:get_uid() or 'message'
  end
  return (tostring(id):gsub('[^%w%.%-_@]', '_'))
end

local function format_p(p)
  return string.format('%.3f', tonumber(p) or 0)
end

-- Adds the symbols for a parsed /v1/scan answer.
local function insert_results(task, scan)
  local spam, ad = {}, {}
  local best_spam, best_ad = 0, 0
  for _, image in ipairs(scan.images or {}) do
    local probabilities = image.probabilities or {}
    local name = image.name or 'image'
    if image.label == 'spam' then
      local p = tonumber(probabilities.spam) or 1
      best_spam = math.max(best_spam, p)
      table.insert(spam, string.format('%s:%s', name, format_p(p)))
    elseif image.label == 'ad' then
      local p = tonumber(probabilities.ad) or 1
      best_ad = math.max(best_ad, p)
      table.insert(ad, string.format('%s:%s', name, format_p(p)))
    elseif image.error then
      lua_util.debugm(N, task, 'spamlens could not classify %s: %s', name, image.error)
    end
  end
  if #spam > 0 then
    task:insert_result(settings.symbol_image_spam, best_spam, spam)
  end
  if #ad > 0 then
    task:insert_result(settings.symbol_image_ad, best_ad, ad)
  end
  local text = scan.text
  if type(text) == 'table' and text.is_spam then
    local options = { string.format('score=%s/%s', format_p(text.score), format_p(text.threshold)) }
    for _, strongest in ipairs(text.strongest or {}) do
      if type(strongest) == 'table' and strongest[1] then
        table.insert(options, tostring(strongest[1]))
      end
    end
    task:insert_result(settings.symbol_text_spam, 1.0, options)
  end
end

local function spamlens_check(task)
  local size = task:get_size() or 0
  if size > settings.max_size then
    lua_util.debugm(N, task, 'message of %s bytes is over max_size %s: not sent', size, settings.max_size)
    return
  end
  if settings.only_with_images and not has_image(task) then
    return
  end
  local headers = { ['Content-Type'] = 'message/rfc822' }
  if settings.token then
    headers['Authorization'] = 'Bearer ' .. settings.token
  end
  local url = settings.url .. (settings.url:find('?', 1, true) and '&' or '?') .. 'name=' .. message_name(task)

  local function on_reply(err, code, body)
    if err then
      rspamd_logger.warnx(task, 'spamlens at %s is unreachable (%s): no spamlens symbols', settings.url, err)
      return
    end
    if code ~= 200 then
      rspamd_logger.warnx(task, 'spamlens at %s answered %s (%s): no spamlens symbols', settings.url, code,
          body and tostring(body):sub(1, 300) or '')
      return
    end
    local parser = ucl.parser()
    local ok, perr = parser:parse_string(tostring(body))
    if not ok then
      rspamd_logger.warnx(task, 'spamlens answer is not JSON (%s): no spamlens symbols', perr)
      return
    end
    local scan = parser:get_object()
    if type(scan) ~= 'table' then
      rspamd_logger.warnx(task, 'spamlens answer is not a JSON object: no spamlens symbols')
      return
    end
    insert_results(task, scan)
    lua_util.debugm(N, task, 'spamlens verdict %s (%s)', scan.verdict and scan.verdict.label,
        scan.verdict and scan.verdict.decided_by)
  end

  rspamd_http.request({
    task = task,
    url = url,
    method = 'post',
    body = task:get_content(),
    headers = headers,
    timeout = settings.timeout,
    callback = on_reply,
  })
end

local opts = rspamd_config:get_all_opt(N)
if not opts then
  lua_util.disable_module(N, 'config')
  return
end
settings = lua_util.override_defaults(settings, opts)
settings.timeout = tonumber(settings.timeout) or 15.0
settings.max_size = tonumber(settings.max_size) or 20 * 1024 * 1024
if type(settings.url) ~= 'string' or not settings.url:match('^https?://') then
  rspamd_logger.errx(rspamd_config, 'spamlens: url must be http(s)://host:port/v1/scan, got %s', settings.url)
  lua_util.disable_module(N, 'config')
  return
end

local id = rspamd_config:register_symbol({
  name = 'SPAMLENS_CHECK',
  type = 'callback',
  callback = spamlens_check,
  -- Lets rspamd wait for the reply up to the configured timeout.
  augmentations = { string.format('timeout=%f', settings.timeout) },
})
for _, s in ipairs({
  { settings.symbol_image_spam, settings.score_image_spam, 'spamlens: an image is spam (ResNet-50 head, words read in it)' },
  { settings.symbol_image_ad, settings.score_image_ad, 'spamlens: an image is an advertisement' },
  { settings.symbol_text_spam, settings.score_text_spam, 'spamlens: the CLA_ANN text filter says spam' },
}) do
  rspamd_config:register_symbol({
    name = s[1],
    type = 'virtual',
    parent = id,
    score = tonumber(s[2]),
    group = settings.group,
    description = s[3],
  })
end
rspamd_logger.infox(rspamd_config, 'spamlens: scanning messages with %s (timeout %ss)', settings.url, settings.timeout)
