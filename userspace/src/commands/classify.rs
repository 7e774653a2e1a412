//! `classify`: Random Forest training and evaluation.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use comfy_table::{CellAlignment, Table as Display};
use serde::Serialize;

use super::FeatureArgs;
use crate::features::encoding::{FeaturePlan, PlanRequest};
use crate::io::{self, Table};
use crate::model_file::SavedModel;
use crate::progress;
use crate::screen::HEADER_RULE_ONLY;
use ml_sniffing_forest::metrics::{self, Evaluation, Scores};
use ml_sniffing_forest::rforest::{Criterion, MaxFeatures, RandomForestParams};
use ml_sniffing_forest::score::ForestScorer;
use ml_sniffing_forest::split;

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// CSV file with labelled rows (or a capture); `-` reads stdin.
    pub input: PathBuf,
    /// Name of the column holding the ground-truth labels (text or numbers,
    /// two classes or more).
    #[arg(long)]
    pub label_column: String,
    /// Fraction of the rows kept for evaluation (a stratified, seeded split).
    #[arg(long, default_value_t = 0.3)]
    pub test_size: f64,
    /// Evaluate on this labelled CSV instead of splitting INPUT (all of
    /// INPUT is then used for training).
    #[arg(long, value_name = "TEST.csv")]
    pub test_file: Option<PathBuf>,
    /// Seed for the train/test split and the model.
    #[arg(long, default_value_t = 42)]
    pub random_state: u64,
    /// Number of trees in the forest.
    #[arg(long, default_value_t = 200)]
    pub n_estimators: usize,
    /// Deepest level a tree may grow to (default: unlimited, leaves pure).
    #[arg(long)]
    pub max_depth: Option<u32>,
    /// Features tried at each split: `sqrt` (of the feature count), `log2`,
    /// `all`, a count, or a fraction in (0, 1].
    #[arg(long, default_value = "sqrt")]
    pub max_features: MaxFeatures,
    /// Fewest training rows a leaf may hold.
    #[arg(long, default_value_t = 1)]
    pub min_samples_leaf: usize,
    /// Split quality measure.
    #[arg(long, default_value = "gini", value_parser = criterion_parser())]
    pub criterion: Criterion,
    #[command(flatten)]
    pub features: FeatureArgs,
    /// Columns never used as features (identifiers, leaking labels...).
    /// Comma-separated. For packet captures: features of the set to leave
    /// out.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub exclude_columns: Vec<String>,
    /// Write the trained model to this file (for `predict`).
    #[arg(long, value_name = "FILE")]
    pub save_model: Option<PathBuf>,
    /// Write a self-contained HTML report to this file: the confusion
    /// matrix as a heat map, precision, recall and F1 per class, and the
    /// features the test accuracy depends on most.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Print the figures as one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Threads that grow trees (0 = one per CPU); the model is the same
    /// whatever the number.
    #[arg(long, default_value_t = 0)]
    pub n_jobs: usize,
}

/// The labels of a table: class index of each row and the class names,
/// sorted as scikit-learn's `classes_` (numerically when every label is an
/// integer, else by text).
pub struct Labels {
    pub classes: Vec<String>,
    pub of_row: Vec<u32>,
}

/// `--criterion`'s values, listed in the help as clap lists an enum's.
fn criterion_parser() -> impl clap::builder::TypedValueParser<Value = Criterion> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Criterion::NAMES)
        .map(|name| name.parse().expect("one of Criterion::NAMES"))
}

fn label_column(table: &Table, name: &str, path: &Path) -> Result<usize> {
    table.column(name).with_context(|| {
        format!(
            "{} has no label column `{name}` (its columns are: {})",
            path.display(),
            table.headers().join(", ")
        )
    })
}

fn label_texts<'a>(table: &'a Table, col: usize, path: &Path) -> Result<Vec<&'a str>> {
    (0..table.len())
        .map(|row| {
            let text = table.cell(row, col).trim();
            if text.is_empty() || text.eq_ignore_ascii_case("nan") {
                bail!(
                    "{} line {}: the label column `{}` is empty; every row needs a label",
                    path.display(),
                    table.line(row),
                    table.headers()[col]
                );
            }
            Ok(text)
        })
        .collect()
}

impl Labels {
    pub fn learn(table: &Table, name: &str, path: &Path) -> Result<Labels> {
        let col = label_column(table, name, path)?;
        let texts = label_texts(table, col, path)?;
        let mut classes: Vec<String> = texts.iter().map(|s| s.to_string()).collect();
        classes.sort_unstable();
        classes.dedup();
        if classes.iter().all(|c| c.parse::<i64>().is_ok()) {
            classes.sort_by_key(|c| c.parse::<i64>().expect("checked"));
        }
        if classes.len() < 2 {
            bail!(
                "the label column `{name}` holds only one class (`{}`): a classifier needs at least two",
                classes[0]
            );
        }
        let of_row = texts
            .iter()
            .map(|t| {
                classes
                    .iter()
                    .position(|c| c == t)
                    .expect("every label is a class") as u32
            })
            .collect();
        Ok(Labels { classes, of_row })
    }

    /// The labels of another table with the same classes.
    pub fn of(&self, table: &Table, name: &str, path: &Path) -> Result<Vec<u32>> {
        let col = label_column(table, name, path)?;
        let texts = label_texts(table, col, path)?;
        texts
            .iter()
            .enumerate()
            .map(|(row, t)| {
                self.classes
                    .iter()
                    .position(|c| c == t)
                    .map(|k| k as u32)
                    .with_context(|| {
                        format!(
                            "{} line {}: the label `{t}` never occurs in the training rows (classes: {})",
                            path.display(),
                            table.line(row),
                            self.classes.join(", ")
                        )
                    })
            })
            .collect()
    }
}

pub fn run(args: ClassifyArgs, out: &mut dyn Write) -> Result<()> {
    let inputs: Vec<&Path> = [Some(args.input.as_path()), args.test_file.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    crate::io::output::refuse_overwrite(args.save_model.as_deref(), "--save-model", &inputs)?;
    crate::io::output::refuse_overwrite(args.report.as_deref(), "--report", &inputs)?;
    let params = RandomForestParams {
        n_estimators: args.n_estimators,
        criterion: args.criterion,
        max_depth: args.max_depth,
        max_features: args.max_features,
        min_samples_leaf: args.min_samples_leaf,
        random_state: args.random_state,
        n_jobs: args.n_jobs,
        ..Default::default()
    };
    params.check()?;
    if args.test_file.is_none() && !(args.test_size > 0.0 && args.test_size < 1.0) {
        bail!(
            "--test-size must be a fraction in (0, 1), got {}",
            args.test_size
        );
    }
    if args.test_file.as_deref().is_some_and(io::input::is_dash) && io::input::is_dash(&args.input)
    {
        bail!("stdin can be read only once: give INPUT or --test-file as a file");
    }
    let table = crate::load::load_table(&args.input)?;
    let labels = Labels::learn(&table, &args.label_column, &args.input)?;
    let identifiers = crate::features::encoding::identifier_columns(table.headers());
    if args.features.feature_columns.is_none()
        && !identifiers.is_empty()
        && crate::features::cells::PacketColumns::find(&table).is_err()
    {
        eprintln!(
            "Left out of the features (they name a flow rather than describe it): {}; name \
             them in --feature-columns to use them.",
            identifiers
                .iter()
                .map(|c| format!("`{}`", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let plan = FeaturePlan::learn(
        &table,
        &PlanRequest {
            set: Some(args.features.features),
            feature_columns: args.features.feature_columns.clone(),
            exclude_columns: args.exclude_columns.clone(),
            label: Some(args.label_column.clone()),
        },
    )?;
    let all = plan.apply(&table)?;

    let (train, y_train, test, y_test, how) = match &args.test_file {
        Some(path) => {
            let test_table = crate::load::load_table(path)?;
            let y_test = labels.of(&test_table, &args.label_column, path)?;
            let test = plan
                .apply(&test_table)
                .with_context(|| format!("{} does not match the training file", path.display()))?;
            let how = format!("test rows from {}", path.display());
            (all, labels.of_row.clone(), test, y_test, how)
        }
        None => {
            let s = split::stratified(
                &labels.of_row,
                &labels.classes,
                args.test_size,
                args.random_state,
            )?;
            let pick = |rows: &[usize]| rows.iter().map(|&r| labels.of_row[r]).collect::<Vec<_>>();
            let how = format!("stratified split, --test-size {}", args.test_size);
            (
                all.select_rows(&s.train),
                pick(&s.train),
                all.select_rows(&s.test),
                pick(&s.test),
                how,
            )
        }
    };

    let bar = progress::items(params.n_estimators as u64, "training");
    let model = params.fit(&train, &y_train, labels.classes.clone(), &|| bar.inc(1))?;
    bar.finish_and_clear();
    let scorer = ForestScorer::new(model);
    let predicted = scorer.classes(&test);
    let evaluation = metrics::evaluate(&y_test, &predicted, labels.classes.len());

    if let Some(path) = &args.report {
        crate::reports::classify::write(
            path,
            &crate::reports::classify::Input {
                input: &args.input,
                how: &how,
                evaluation: &evaluation,
                classes: &labels.classes,
                scorer: &scorer,
                test: &test,
                y_test: &y_test,
                random_state: args.random_state,
            },
        )?;
    }
    if let Some(path) = &args.save_model {
        SavedModel::RandomForest {
            plan: plan.clone(),
            model: scorer.into_model(),
        }
        .save(path)?;
    }

    if args.json {
        let report = JsonReport::new(&evaluation, &labels.classes, train.n_rows(), &plan, &args);
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "Trained on {} rows, tested on {} rows ({how}); {} features, {} classes.",
        train.n_rows(),
        test.n_rows(),
        plan.feature_names().len(),
        labels.classes.len()
    )?;
    write_text_report(out, &evaluation, &labels.classes)?;
    if let Some(path) = &args.report {
        writeln!(out, "\nReport written to {}", path.display())?;
    }
    if let Some(path) = &args.save_model {
        writeln!(out, "\nModel saved to {}", path.display())?;
    }
    Ok(())
}

fn write_text_report(out: &mut dyn Write, e: &Evaluation, classes: &[String]) -> Result<()> {
    writeln!(out, "Evaluation metrics:")?;
    for (name, v) in [
        ("accuracy", e.accuracy),
        ("macro_precision", e.macro_avg.precision),
        ("macro_recall", e.macro_avg.recall),
        ("macro_f1", e.macro_avg.f1),
    ] {
        writeln!(out, "  {name}: {v:.3}")?;
    }
    writeln!(out)?;
    writeln!(out, "Detailed classification report:")?;
    writeln!(out, "{}", report_table(e, classes))?;
    writeln!(out)?;
    writeln!(out, "Confusion matrix:")?;
    writeln!(out, "{}", confusion_table(e, classes))?;
    Ok(())
}

/// scikit-learn's `classification_report` layout (2 decimals).
pub fn report_table(e: &Evaluation, classes: &[String]) -> Display {
    let mut t = Display::new();
    t.load_preset(HEADER_RULE_ONLY);
    t.set_header(["", "precision", "recall", "f1-score", "support"]);
    let row = |name: &str, s: &Scores| {
        vec![
            crate::screen::shown_cell(name),
            format!("{:.2}", s.precision),
            format!("{:.2}", s.recall),
            format!("{:.2}", s.f1),
            s.support.to_string(),
        ]
    };
    for (k, s) in e.labels.iter().zip(&e.per_class) {
        t.add_row(row(&classes[*k as usize], s));
    }
    t.add_row(vec![
        "accuracy".to_string(),
        String::new(),
        String::new(),
        format!("{:.2}", e.accuracy),
        e.n_samples.to_string(),
    ]);
    t.add_row(row("macro avg", &e.macro_avg));
    t.add_row(row("weighted avg", &e.weighted_avg));
    for c in 0..5 {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// True classes down the side, predicted classes across the top.
pub fn confusion_table(e: &Evaluation, classes: &[String]) -> Display {
    let mut t = Display::new();
    t.load_preset(HEADER_RULE_ONLY);
    let mut header = vec!["true \\ predicted".to_string()];
    header.extend(
        e.labels
            .iter()
            .map(|&k| crate::screen::shown_cell(&classes[k as usize])),
    );
    t.set_header(header);
    for (i, &k) in e.labels.iter().enumerate() {
        let mut cells = vec![crate::screen::shown_cell(&classes[k as usize])];
        cells.extend(e.confusion[i].iter().map(u64::to_string));
        t.add_row(cells);
    }
    for c in 1..=e.labels.len() {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

#[derive(Serialize)]
struct ClassScores<'a> {
    class: &'a str,
    #[serde(flatten)]
    scores: Scores,
}

#[derive(Serialize)]
struct Confusion<'a> {
    /// Rows: true class; columns: predicted class; both in `labels` order.
    labels: Vec<&'a str>,
    rows_true_columns_predicted: &'a [Vec<u64>],
}

/// `--json`: the same figures as the tables, full precision.
#[derive(Serialize)]
struct JsonReport<'a> {
    train_rows: usize,
    test_rows: u64,
    features: Vec<String>,
    accuracy: f64,
    macro_precision: f64,
    macro_recall: f64,
    macro_f1: f64,
    classification_report: Vec<ClassScores<'a>>,
    macro_avg: Scores,
    weighted_avg: Scores,
    confusion_matrix: Confusion<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_saved_to: Option<String>,
}

impl<'a> JsonReport<'a> {
    fn new(
        e: &'a Evaluation,
        classes: &'a [String],
        train_rows: usize,
        plan: &FeaturePlan,
        args: &ClassifyArgs,
    ) -> Self {
        JsonReport {
            train_rows,
            test_rows: e.n_samples,
            features: plan.feature_names(),
            accuracy: e.accuracy,
            macro_precision: e.macro_avg.precision,
            macro_recall: e.macro_avg.recall,
            macro_f1: e.macro_avg.f1,
            classification_report: e
                .labels
                .iter()
                .zip(&e.per_class)
                .map(|(&k, s)| ClassScores {
                    class: &classes[k as usize],
                    scores: *s,
                })
                .collect(),
            macro_avg: e.macro_avg,
            weighted_avg: e.weighted_avg,
            confusion_matrix: Confusion {
                labels: e
                    .labels
                    .iter()
                    .map(|&k| classes[k as usize].as_str())
                    .collect(),
                rows_true_columns_predicted: &e.confusion,
            },
            model_saved_to: args.save_model.as_ref().map(|p| p.display().to_string()),
        }
    }
}
