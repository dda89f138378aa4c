// GET /openapi.json: the OpenAPI 3.1 description of Easel's own API (OpenAI's Images API plus Easel's extensions).
// Written by hand from the contract; test/e2e checks that the served document parses and lists every route.

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['message', 'type', 'param', 'code'],
      properties: {
        message: { type: 'string' },
        type: { type: 'string' },
        param: { type: ['string', 'null'] },
        code: { type: ['string', 'null'] },
      },
    },
  },
};

const extensionProps = {
  seed: { type: 'integer', minimum: 0, maximum: 4294967295, description: 'Easel extension: seed of image 0 (image i uses seed + i).' },
  negative_prompt: { type: 'string', description: 'Easel extension: what the image should not show.' },
  num_inference_steps: { type: 'integer', minimum: 1, maximum: 100, description: 'Easel extension: overrides the quality preset.' },
  guidance_scale: { type: 'number', minimum: 0, maximum: 30, description: 'Easel extension: classifier-free guidance scale.' },
  scheduler: {
    type: 'string',
    enum: ['euler', 'euler-ancestral', 'ddim', 'dpm-solver-multistep', 'lcm'],
    description: 'Easel extension: sampling algorithm.',
  },
};

const imagesResponse = {
  type: 'object',
  required: ['created'],
  properties: {
    created: { type: 'integer' },
    data: {
      type: 'array',
      items: {
        type: 'object',
        properties: { b64_json: { type: 'string' }, url: { type: 'string' }, revised_prompt: { type: 'string' } },
      },
    },
    background: { type: 'string', enum: ['transparent', 'opaque'] },
    output_format: { type: 'string', enum: ['png', 'jpeg', 'webp'] },
    size: { type: 'string' },
    quality: { type: 'string' },
    usage: {
      type: 'object',
      properties: {
        input_tokens: { type: 'integer' },
        output_tokens: { type: 'integer' },
        total_tokens: { type: 'integer' },
        input_tokens_details: {
          type: 'object',
          properties: { text_tokens: { type: 'integer' }, image_tokens: { type: 'integer' } },
        },
      },
    },
  },
};

export function openApiDocument(modelNames: readonly string[]): Record<string, unknown> {
  const errors = {
    '400': { description: 'Invalid request', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    '401': { description: 'Missing or invalid API key (auth mode "keys")', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    '404': { description: 'Unknown model or route', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    '429': { description: 'Queue full; see Retry-After', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Easel',
      version: '0.1.0',
      description:
        "Self-hosted image generation speaking OpenAI's Images API. Request rules follow the family of the model " +
        'name (dall-e-2, dall-e-3, gpt-image); Easel extension fields are listed per model in GET /v1/models.',
    },
    components: {
      securitySchemes: { ApiKeyAuth: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: errorSchema, ImagesResponse: imagesResponse },
    },
    security: [{ ApiKeyAuth: [] }],
    paths: {
      '/v1/images/generations': {
        post: {
          operationId: 'createImage',
          summary: 'Creates images from a prompt.',
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['prompt'],
                  additionalProperties: false,
                  properties: {
                    prompt: { type: 'string', description: 'Max 1000 (dall-e-2), 4000 (dall-e-3) or 32000 (gpt-image) characters.' },
                    model: { type: 'string', enum: [...modelNames], description: 'Defaults to dall-e-2 unless a gpt-image-only field is used.' },
                    n: { type: ['integer', 'null'], minimum: 1, maximum: 10 },
                    size: { type: ['string', 'null'] },
                    quality: { type: ['string', 'null'], enum: ['standard', 'hd', 'low', 'medium', 'high', 'auto', null] },
                    style: { type: ['string', 'null'], enum: ['vivid', 'natural', null] },
                    response_format: { type: ['string', 'null'], enum: ['url', 'b64_json', null] },
                    output_format: { type: ['string', 'null'], enum: ['png', 'jpeg', 'webp', null] },
                    output_compression: { type: ['integer', 'null'], minimum: 0, maximum: 100 },
                    background: { type: ['string', 'null'], enum: ['transparent', 'opaque', 'auto', null] },
                    moderation: { type: ['string', 'null'], enum: ['low', 'auto', null] },
                    stream: { type: ['boolean', 'null'] },
                    partial_images: { type: ['integer', 'null'], minimum: 0, maximum: 3 },
                    user: { type: 'string' },
                    ...extensionProps,
                  },
                },
              },
            },
          },
          responses: {
            '200': { description: 'The generated images', content: { 'application/json': { schema: { $ref: '#/components/schemas/ImagesResponse' } } } },
            ...errors,
          },
        },
      },
      '/v1/images/edits': {
        post: {
          operationId: 'createImageEdit',
          summary: 'Edits images: image-to-image without a mask, inpainting where the mask is fully transparent. Streams with stream: true.',
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  required: ['image', 'prompt'],
                  properties: {
                    image: { description: 'One file (image) or several (image[]); the first is edited, the others only count as input.' },
                    mask: { type: 'string', format: 'binary', description: 'PNG with alpha, same size as the first image.' },
                    prompt: { type: 'string' },
                    ...extensionProps,
                  },
                },
              },
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['images', 'prompt'],
                  properties: {
                    images: { type: 'array', items: { type: 'object', properties: { image_url: { type: 'string' }, file_id: { type: 'string' } } } },
                    mask: { type: 'object', properties: { image_url: { type: 'string' } } },
                    prompt: { type: 'string' },
                    ...extensionProps,
                  },
                },
              },
            },
          },
          responses: {
            '200': {
              description: 'The edited images (or text/event-stream with stream: true)',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/ImagesResponse' } }, 'text/event-stream': {} },
            },
            ...errors,
          },
        },
      },
      '/v1/images/variations': {
        post: {
          operationId: 'createImageVariation',
          summary: 'Variations of one square PNG (dall-e-2 family).',
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  required: ['image'],
                  properties: { image: { type: 'string', format: 'binary' }, n: { type: 'integer' }, size: { type: 'string' }, response_format: { type: 'string' }, user: { type: 'string' } },
                },
              },
            },
          },
          responses: {
            '200': { description: 'The variations', content: { 'application/json': { schema: { $ref: '#/components/schemas/ImagesResponse' } } } },
            ...errors,
          },
        },
      },
      '/v1/images/files/{file}': {
        get: {
          operationId: 'getImageFile',
          summary: 'Downloads an image from a signed `url` response (valid 60 minutes).',
          security: [],
          parameters: [
            { name: 'file', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'expires', in: 'query', required: true, schema: { type: 'integer' } },
            { name: 'sig', in: 'query', required: true, schema: { type: 'string' } },
          ],
          responses: {
            '200': { description: 'The image bytes', content: { 'image/png': {}, 'image/jpeg': {}, 'image/webp': {} } },
            '403': { description: 'Invalid signature' },
            '404': { description: 'Expired or unknown image' },
          },
        },
      },
      '/v1/models': { get: { operationId: 'listModels', summary: 'Served model names, their family, target and extensions.', responses: { '200': { description: 'Model list' } } } },
      '/v1/models/{id}': {
        get: {
          operationId: 'retrieveModel',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'One model' }, '404': errors['404'] },
        },
      },
      '/healthz': { get: { operationId: 'health', security: [], responses: { '200': { description: 'Process alive' } } } },
      '/readyz': { get: { operationId: 'ready', security: [], responses: { '200': { description: 'Models loaded and warmed' }, '503': { description: 'Warming up' } } } },
    },
  };
}
