// One verdict for a message from the verdicts of its images.

/** Labels from most to least severe; a message takes the most severe label an image reaches. */
export const SEVERITY = ['spam', 'ad', 'ham'];

/** Default probability an image needs for its label to decide a message. */
export const DEFAULT_THRESHOLDS = Object.freeze({ spam: 0.5, ad: 0.5 });

const IMAGE_NAME = /\.(jpe?g|png|gif|bmp|webp|tiff?|ico)$/i;

/**
 * Whether a message part should be scanned as an image: an `image/*` content type, or a generic one
 * (`application/octet-stream`, none) on a file name with an image extension — spam often mislabels.
 */
export function isImagePart(part) {
  const type = String(part.contentType ?? '').toLowerCase().split(';')[0].trim();
  if (type.startsWith('image/')) return true;
  return (type === '' || type === 'application/octet-stream') && IMAGE_NAME.test(String(part.name ?? ''));
}

/**
 * The message verdict from per-image results (`{ name, probabilities }` or `{ name, error }`): the
 * most severe non-ham label whose probability reaches its threshold on any image; otherwise 'ham'
 * when at least one image was classified, and null when none could be. `reason` says which image
 * decided and why.
 */
export function messageVerdict(images, thresholds = {}) {
  const limits = { ...DEFAULT_THRESHOLDS, ...thresholds };
  for (const [label, limit] of Object.entries(limits)) {
    if (!(typeof limit === 'number' && limit >= 0 && limit <= 1)) {
      throw new RangeError(`spamlens: threshold for '${label}' must be a number in [0, 1], got ${limit}`);
    }
  }
  const classified = images.filter((image) => image && image.probabilities);
  for (const label of SEVERITY) {
    if (label === 'ham' || limits[label] === undefined) continue;
    let decider = null;
    for (const image of classified) {
      const p = image.probabilities[label];
      if (typeof p === 'number' && p >= limits[label] && (!decider || p > decider.probabilities[label])) decider = image;
    }
    if (decider) {
      const p = decider.probabilities[label];
      return {
        verdict: label,
        decidedBy: decider.name,
        reason: `image '${decider.name}': ${label} ${p.toFixed(3)} ≥ ${limits[label]}`,
      };
    }
  }
  if (classified.length === 0) {
    return { verdict: null, decidedBy: null, reason: images.length ? 'no image could be classified' : 'no images' };
  }
  const limitsText = Object.entries(limits).map(([l, t]) => `${l} ≥ ${t}`).join(', ');
  return { verdict: 'ham', decidedBy: null, reason: `no image reached ${limitsText}` };
}
