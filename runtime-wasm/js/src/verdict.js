// One verdict for a message from the results of its images. The rule is core's
// (`core::scan::combine`, the one `scanEmail` and native `spamlens scan` use), run by the wasm
// module where it is already loaded: the scanner's worker, or this thread with `worker: false`.

const IMAGE_NAME = /\.(jpe?g|png|gif|bmp|webp|tiff?|ico)$/i;

/**
 * Whether a message part should be scanned as an image: an `image/*` content type, or a generic one
 * (`application/octet-stream`, none) on a file name with an image extension — spam often mislabels.
 * (For a whole `.eml`, `scanEmail` uses core's parser instead, which sniffs the bytes.)
 */
export function isImagePart(part) {
  const type = String(part.contentType ?? '').toLowerCase().split(';')[0].trim();
  if (type.startsWith('image/')) return true;
  return (type === '' || type === 'application/octet-stream') && IMAGE_NAME.test(String(part.name ?? ''));
}

/**
 * The fields of per-image results (`classify` results, `{ name, error }` failures) that the rule
 * reads: what goes to the worker (less to copy, and nothing a worker message cannot carry).
 * Anything that is not an array is passed on for the wasm side to refuse with its message.
 */
export function verdictImages(images) {
  if (!Array.isArray(images)) return images;
  return images.map((image) =>
    image && typeof image === 'object'
      ? { name: image.name, label: image.label, probabilities: image.probabilities, error: image.error }
      : image,
  );
}

/**
 * The message verdict from per-image results by core's rule, with `wasm` (a loaded module, see
 * `loadWasm`): `{ label: 'spam' | 'ham' | 'ad', decided_by: 'image' | 'none', reason }`. `rule`:
 * `{ image_spam_threshold, image_ad_threshold, use_text, use_images }`, each optional (default: an
 * image counts by its label, the model's operating point). Throws an Error naming the image or the
 * rule field that is wrong.
 */
export function messageVerdict(wasm, images, rule) {
  return wasm.messageVerdict(verdictImages(images), rule);
}
