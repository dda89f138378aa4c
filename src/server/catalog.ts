// The names a server answers for: local model folders (described by ModelInfo, read without ONNX Runtime) and
// the names clients use, each speaking one OpenAI family's request rules (dall-e-2, dall-e-3, gpt-image).
import type { Config } from '../config/config.js';
import { type Family, OPENAI_MODEL_FAMILIES } from '../contract/families.js';
import { type ModelInfo, readModelInfo } from '../engine/models/info.js';

export interface LocalModel {
  name: string;
  path: string;
  info: ModelInfo;
}

export interface ServedModel {
  /** The name clients send in `model`. */
  id: string;
  family: Family;
  local: LocalModel;
  /** True when this name is an OpenAI model name mapped onto a local model. */
  isAlias: boolean;
}

export class ModelCatalog {
  private constructor(
    readonly locals: ReadonlyMap<string, LocalModel>,
    private readonly served: ReadonlyMap<string, ServedModel>,
    readonly defaultName: string,
  ) {}

  /** Reads every configured model folder's description (throws ModelFolderError naming a broken folder). */
  static fromConfig(config: Readonly<Config>): ModelCatalog {
    return ModelCatalog.fromInfos(config, new Map(config.models.map((m) => [m.name, readModelInfo(m.path, { variant: m.variant })])));
  }

  /**
   * The configured names over model info from elsewhere (an API node's, published by its workers): a model with no
   * info yet is left out, with the aliases that point at it.
   */
  static fromInfos(config: Readonly<Config>, infos: ReadonlyMap<string, ModelInfo>): ModelCatalog {
    const locals = new Map<string, LocalModel>();
    const served = new Map<string, ServedModel>();
    for (const m of config.models) {
      const info = infos.get(m.name);
      if (!info) continue;
      const local: LocalModel = { name: m.name, path: m.path, info };
      locals.set(m.name, local);
      served.set(m.name, { id: m.name, family: m.family ?? 'gpt-image', local, isAlias: false });
    }
    for (const [alias, target] of Object.entries(config.aliases)) {
      const local = locals.get(target);
      if (!local) {
        if (!config.models.some((m) => m.name === target)) throw new Error(`alias '${alias}' points at unknown model '${target}'`);
        continue;
      }
      const family = OPENAI_MODEL_FAMILIES[alias] ?? served.get(target)!.family;
      served.set(alias, { id: alias, family, local, isAlias: true });
    }
    return new ModelCatalog(locals, served, config.defaultModel);
  }

  resolve(name: string): ServedModel | undefined {
    return this.served.get(name);
  }

  list(): ServedModel[] {
    return [...this.served.values()];
  }

  aliasesOf(local: string): string[] {
    return this.list()
      .filter((s) => s.isAlias && s.local.name === local)
      .map((s) => s.id);
  }
}
