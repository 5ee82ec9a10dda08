/** The benchmark scores with the same SSIM the processor's `quality: "auto"` uses: one implementation. */
export { decodeLuma, lumaFromPixels, ssim, type Luma, type SsimOptions } from '../../shared/image/ssim';
