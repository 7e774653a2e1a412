//! Saved models: one file format for both forests.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `MLSNIFF\0` |
//! | 4 | format version (u32), currently [`FORMAT_VERSION`] |
//! | 8 | header length H (u64) |
//! | H | header: UTF-8 JSON ([`Header`]) |
//! | ... | the arrays listed in `header.arrays`, in that order, each `len` values of 4 bytes (`u32` or `f32`) |
//! | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! The header holds `kind` (`isolation_forest` or `random_forest`), the
//! ml-sniffing version that wrote it, the feature plan (which features, how
//! CSV cells are encoded, see `features::encoding`), and the model's own
//! fields (parameters, offset, class names...). Readers check the magic,
//! then the version, then the checksum, then every index in the arrays, so
//! a file from another version, a truncated or corrupted file each give one
//! clear error, and a loaded model is safe to walk.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::features::encoding::FeaturePlan;
use crate::io::output::AtomicFile;
use ml_sniffing_forest::baseline::Baseline;
use ml_sniffing_forest::iforest::flat::FlatArrays;
use ml_sniffing_forest::iforest::{FlatIsolationForest, IsolationForest, IsolationForestParams};
use ml_sniffing_forest::rforest::flat::{FlatForest, FlatNode};
use ml_sniffing_forest::rforest::{RandomForest, RandomForestParams};

pub const MAGIC: &[u8; 8] = b"MLSNIFF\0";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    IsolationForest,
    RandomForest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    U32,
    F32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayInfo {
    pub name: String,
    pub dtype: DType,
    pub len: u64,
}

/// The JSON header.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub kind: ModelKind,
    /// The ml-sniffing version that wrote the file (informative).
    pub written_by: String,
    pub features: FeaturePlan,
    pub arrays: Vec<ArrayInfo>,
    /// Kind-specific fields.
    pub model: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IsolationForestFields {
    params: IsolationForestParams,
    max_samples: usize,
    offset: f64,
    depth: u32,
    n_features: u32,
    /// Absent in files of earlier versions.
    #[serde(default)]
    baseline: Baseline,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RandomForestFields {
    params: RandomForestParams,
    classes: Vec<String>,
    n_features: u32,
}

/// A model read from or written to a file, with the plan of its inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum SavedModel {
    IsolationForest {
        plan: FeaturePlan,
        model: IsolationForest,
    },
    RandomForest {
        plan: FeaturePlan,
        model: RandomForest,
    },
}

enum Array<'a> {
    U32(&'a [u32]),
    F32(&'a [f32]),
}

impl SavedModel {
    pub fn plan(&self) -> &FeaturePlan {
        match self {
            SavedModel::IsolationForest { plan, .. } | SavedModel::RandomForest { plan, .. } => {
                plan
            }
        }
    }

    pub fn kind(&self) -> ModelKind {
        match self {
            SavedModel::IsolationForest { .. } => ModelKind::IsolationForest,
            SavedModel::RandomForest { .. } => ModelKind::RandomForest,
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let thresholds: Vec<f32>;
        let features: Vec<u32>;
        let children: Vec<u32>;
        let iforest_arrays;
        let (kind, model, arrays): (_, serde_json::Value, Vec<(&str, Array)>) = match self {
            SavedModel::IsolationForest { model, .. } => {
                if !model.offset.is_finite() {
                    bail!(
                        "the Isolation Forest's offset is not a number (fitted on too few \
                         rows): not saved"
                    );
                }
                let f = &model.forest;
                iforest_arrays = f.arrays();
                (
                    ModelKind::IsolationForest,
                    serde_json::to_value(IsolationForestFields {
                        params: model.params,
                        max_samples: model.max_samples,
                        offset: model.offset,
                        depth: f.depth(),
                        n_features: f.n_features() as u32,
                        baseline: model.baseline.clone(),
                    })?,
                    vec![
                        ("features", Array::U32(&iforest_arrays.features)),
                        ("thresholds", Array::F32(&iforest_arrays.thresholds)),
                        ("leaves", Array::F32(&iforest_arrays.leaves)),
                    ],
                )
            }
            SavedModel::RandomForest { model, .. } => {
                (thresholds, features, children) = node_columns(&model.forest);
                (
                    ModelKind::RandomForest,
                    serde_json::to_value(RandomForestFields {
                        params: model.params,
                        classes: model.classes.clone(),
                        n_features: model.forest.n_features() as u32,
                    })?,
                    random_forest_arrays(&model.forest, &thresholds, &features, &children),
                )
            }
        };
        encode(self.plan(), kind, model, &arrays)
    }

    /// Writes the model to `path` (whole or not at all).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        let mut file = AtomicFile::create(path)?;
        std::io::Write::write_all(&mut file, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.commit()?;
        Ok(())
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<SavedModel> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow!("the model file {shown} does not exist"),
            _ => anyhow::Error::new(e).context(format!("cannot read the model file {shown}")),
        })?;
        Self::from_bytes(&bytes, &shown)
    }

    /// Parses a model file's bytes; `shown` names it in errors.
    pub fn from_bytes(bytes: &[u8], shown: &str) -> Result<SavedModel> {
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            bail!("{shown} is not an ml-sniffing model file");
        }
        let damaged = || {
            anyhow!("{shown} is damaged (truncated or corrupted): its checksum does not match; save the model again")
        };
        if bytes.len() < 12 {
            return Err(damaged());
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            bail!(
                "{shown} was written by format version {version}; this ml-sniffing reads version {FORMAT_VERSION}"
            );
        }
        if bytes.len() < 24 {
            return Err(damaged());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err(damaged());
        }
        let invalid = |what: String| anyhow!("{shown} is not a valid model file: {what}");
        let header_len = u64::from_le_bytes(body[12..20].try_into().expect("8 bytes"));
        let header_end = 20usize
            .checked_add(
                usize::try_from(header_len).map_err(|_| invalid("header too long".into()))?,
            )
            .filter(|&e| e <= body.len())
            .ok_or_else(|| invalid("the header is longer than the file".into()))?;
        let header: Header = serde_json::from_slice(&body[20..header_end])
            .map_err(|e| invalid(format!("unreadable header ({e})")))?;
        let mut rest = &body[header_end..];
        let mut u32s = std::collections::HashMap::new();
        let mut f32s = std::collections::HashMap::new();
        for a in &header.arrays {
            let n = usize::try_from(a.len)
                .ok()
                .and_then(|n| n.checked_mul(4))
                .filter(|&n| n <= rest.len())
                .ok_or_else(|| {
                    invalid(format!("the array `{}` is longer than the file", a.name))
                })?;
            let (data, tail) = rest.split_at(n);
            rest = tail;
            let words = data.chunks_exact(4).map(|c| c.try_into().expect("4 bytes"));
            match a.dtype {
                DType::U32 => {
                    u32s.insert(
                        a.name.clone(),
                        words.map(u32::from_le_bytes).collect::<Vec<_>>(),
                    );
                }
                DType::F32 => {
                    f32s.insert(
                        a.name.clone(),
                        words.map(f32::from_le_bytes).collect::<Vec<_>>(),
                    );
                }
            }
        }
        if !rest.is_empty() {
            return Err(invalid("bytes left over after the arrays".into()));
        }
        let mut take_u32 = |name: &str| {
            u32s.remove(name)
                .ok_or_else(|| invalid(format!("no u32 array `{name}`")))
        };
        let mut take_f32 = |name: &str| {
            f32s.remove(name)
                .ok_or_else(|| invalid(format!("no f32 array `{name}`")))
        };
        let plan = header.features;
        let names = plan.feature_names();
        let model = match header.kind {
            ModelKind::IsolationForest => {
                let m: IsolationForestFields = serde_json::from_value(header.model)
                    .map_err(|e| invalid(format!("unreadable Isolation Forest fields ({e})")))?;
                if m.n_features as usize != names.len() {
                    return Err(invalid("the feature list does not match the trees".into()));
                }
                let forest = FlatIsolationForest::try_from(FlatArrays {
                    depth: m.depth,
                    n_features: m.n_features,
                    features: take_u32("features")?,
                    thresholds: take_f32("thresholds")?,
                    leaves: take_f32("leaves")?,
                })
                .map_err(|e| invalid(format!("{e:#}")))?;
                if forest.n_trees() == 0 || m.max_samples == 0 || !m.offset.is_finite() {
                    return Err(invalid("the Isolation Forest is empty".into()));
                }
                SavedModel::IsolationForest {
                    plan,
                    model: IsolationForest {
                        feature_names: names,
                        params: m.params,
                        max_samples: m.max_samples,
                        offset: m.offset,
                        forest,
                        baseline: m.baseline,
                    },
                }
            }
            ModelKind::RandomForest => {
                let m: RandomForestFields = serde_json::from_value(header.model)
                    .map_err(|e| invalid(format!("unreadable Random Forest fields ({e})")))?;
                if m.n_features as usize != names.len() {
                    return Err(invalid("the feature list does not match the trees".into()));
                }
                let thresholds = take_f32("thresholds")?;
                let features = take_u32("features")?;
                let children = take_u32("children")?;
                if thresholds.len() != features.len() || features.len() != children.len() {
                    return Err(invalid("the node arrays differ in length".into()));
                }
                let nodes = thresholds
                    .into_iter()
                    .zip(features)
                    .zip(children)
                    .map(|((threshold, feature), children)| FlatNode {
                        threshold,
                        feature,
                        children,
                    })
                    .collect();
                let forest = FlatForest::from_parts(
                    m.n_features,
                    m.classes.len() as u32,
                    nodes,
                    take_u32("roots")?,
                    take_u32("leaf_values")?,
                    take_f32("values")?,
                )
                .map_err(|e| invalid(format!("{e:#}")))?;
                SavedModel::RandomForest {
                    plan,
                    model: RandomForest {
                        classes: m.classes,
                        feature_names: names,
                        params: m.params,
                        forest,
                    },
                }
            }
        };
        Ok(model)
    }
}

/// Rows of the node array as the file stores them: one array per field.
fn node_columns(f: &FlatForest) -> (Vec<f32>, Vec<u32>, Vec<u32>) {
    let nodes = f.nodes();
    (
        nodes.iter().map(|n| n.threshold).collect(),
        nodes.iter().map(|n| n.feature).collect(),
        nodes.iter().map(|n| n.children).collect(),
    )
}

/// A Random Forest's arrays in file order.
fn random_forest_arrays<'a>(
    f: &'a FlatForest,
    thresholds: &'a [f32],
    features: &'a [u32],
    children: &'a [u32],
) -> Vec<(&'static str, Array<'a>)> {
    vec![
        ("roots", Array::U32(f.roots())),
        ("thresholds", Array::F32(thresholds)),
        ("features", Array::U32(features)),
        ("children", Array::U32(children)),
        ("leaf_values", Array::U32(f.leaf_values())),
        ("values", Array::F32(f.values())),
    ]
}

/// The bytes of a model file: magic, version, header, arrays, checksum.
fn encode(
    plan: &FeaturePlan,
    kind: ModelKind,
    model: serde_json::Value,
    arrays: &[(&str, Array)],
) -> Result<Vec<u8>> {
    let header = Header {
        kind,
        written_by: format!("ml-sniffing {}", env!("CARGO_PKG_VERSION")),
        features: plan.clone(),
        arrays: arrays
            .iter()
            .map(|(name, a)| ArrayInfo {
                name: name.to_string(),
                dtype: match a {
                    Array::U32(_) => DType::U32,
                    Array::F32(_) => DType::F32,
                },
                len: match a {
                    Array::U32(v) => v.len() as u64,
                    Array::F32(v) => v.len() as u64,
                },
            })
            .collect(),
        model,
    };
    let json = serde_json::to_vec(&header)?;
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for (_, a) in arrays {
        match a {
            Array::U32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Array::F32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::encoding::{ColumnEncoding, ColumnFeature};
    use ml_sniffing_forest::score::ForestScorer;
    use ml_sniffing_forest::testing::noisy_problem;
    use ml_sniffing_forest::FeatureMatrix;

    fn plan(n: usize) -> FeaturePlan {
        FeaturePlan::Columns {
            columns: (0..n)
                .map(|f| ColumnFeature {
                    name: format!("f{f}"),
                    encoding: if f == 0 {
                        ColumnEncoding::Categories {
                            categories: vec!["a".into(), "b".into()],
                        }
                    } else {
                        ColumnEncoding::NumberOrMissing
                    },
                })
                .collect(),
        }
    }

    fn random_forest() -> (SavedModel, FeatureMatrix) {
        let (data, labels) = noisy_problem(300, 4, 1);
        let model = RandomForestParams {
            n_estimators: 7,
            ..Default::default()
        }
        .fit(
            &data,
            &labels,
            vec!["x".into(), "y".into(), "z".into()],
            &|| {},
        )
        .unwrap();
        (
            SavedModel::RandomForest {
                plan: plan(4),
                model,
            },
            data,
        )
    }

    fn isolation_forest() -> (SavedModel, FeatureMatrix) {
        let (data, _) = noisy_problem(300, 4, 2);
        let model = IsolationForestParams {
            n_estimators: 9,
            ..Default::default()
        }
        .fit(&data)
        .unwrap();
        (
            SavedModel::IsolationForest {
                plan: plan(4),
                model,
            },
            data,
        )
    }

    #[test]
    fn round_trips_give_identical_models_and_predictions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.model");
        let (saved, data) = random_forest();
        saved.save(&path).unwrap();
        let loaded = SavedModel::load(&path).unwrap();
        assert_eq!(loaded, saved);
        let (SavedModel::RandomForest { model: a, .. }, SavedModel::RandomForest { model: b, .. }) =
            (&saved, &loaded)
        else {
            panic!("kind changed")
        };
        let proba = |m: &RandomForest| ForestScorer::new(m.clone()).probabilities(&data);
        assert_eq!(proba(a), proba(b));

        let (saved, data) = isolation_forest();
        saved.save(&path).unwrap();
        let loaded = SavedModel::load(&path).unwrap();
        assert_eq!(loaded, saved);
        let (
            SavedModel::IsolationForest { model: a, .. },
            SavedModel::IsolationForest { model: b, .. },
        ) = (&saved, &loaded)
        else {
            panic!("kind changed")
        };
        assert_eq!(a.decision_function(&data), b.decision_function(&data));
    }

    #[test]
    fn the_layout_is_as_documented() {
        let (saved, _) = random_forest();
        let bytes = saved.to_bytes().unwrap();
        assert_eq!(&bytes[..8], b"MLSNIFF\0");
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
        let h = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[20..20 + h]).unwrap();
        assert_eq!(header["kind"], "random_forest");
        assert_eq!(
            header["model"]["classes"],
            serde_json::json!(["x", "y", "z"])
        );
        assert_eq!(header["features"]["mode"], "columns");
        let arrays: u64 = header["arrays"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["len"].as_u64().unwrap() * 4)
            .sum();
        assert_eq!(bytes.len() as u64, 20 + h as u64 + arrays + 4);
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        assert_eq!(crc32fast::hash(body).to_le_bytes(), crc);
    }

    #[test]
    fn truncated_corrupted_foreign_and_other_version_files_are_refused() {
        let (saved, _) = random_forest();
        let bytes = saved.to_bytes().unwrap();
        let err = |b: &[u8]| {
            SavedModel::from_bytes(b, "m.model")
                .unwrap_err()
                .to_string()
        };
        let damaged = "m.model is damaged (truncated or corrupted): its checksum does not match; save the model again";
        for cut in [10, 13, 30, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(err(&bytes[..cut]), damaged, "cut at {cut}");
        }
        for at in [25, bytes.len() / 2, bytes.len() - 2] {
            let mut b = bytes.clone();
            b[at] ^= 0x40;
            assert_eq!(err(&b), damaged, "flipped byte {at}");
        }
        assert_eq!(
            err(b"a,b\n1,2\n"),
            "m.model is not an ml-sniffing model file"
        );
        assert_eq!(err(b""), "m.model is not an ml-sniffing model file");
        let mut b = bytes.clone();
        b[8..12].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(
            err(&b),
            "m.model was written by format version 7; this ml-sniffing reads version 1"
        );
    }

    #[test]
    fn a_well_checksummed_file_with_bad_indices_is_still_refused() {
        let (saved, _) = random_forest();
        let SavedModel::RandomForest { plan, model } = saved else {
            unreachable!()
        };
        // A child pointing back at its parent would loop forever.
        let f = &model.forest;
        let i = f
            .leaf_values()
            .iter()
            .position(|&l| l == flat_not_a_leaf())
            .unwrap();
        let (thresholds, features, mut children) = node_columns(f);
        children[i] = i as u32;
        let fields = serde_json::to_value(RandomForestFields {
            params: model.params,
            classes: model.classes.clone(),
            n_features: f.n_features() as u32,
        })
        .unwrap();
        let arrays = random_forest_arrays(f, &thresholds, &features, &children);
        let bytes = encode(&plan, ModelKind::RandomForest, fields, &arrays).unwrap();
        let e = SavedModel::from_bytes(&bytes, "m.model")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.model is not a valid model file: node"),
            "{e}"
        );
    }

    fn flat_not_a_leaf() -> u32 {
        ml_sniffing_forest::rforest::flat::NOT_A_LEAF
    }
}
