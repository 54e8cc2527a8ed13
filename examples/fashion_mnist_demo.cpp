// fashion_mnist_demo.cpp - the README's demo: build the seed MLP with the Symbol API, show its
// typed IR, then train it and a LeNet-style CNN on Fashion-MNIST from C++, evaluate both on the
// 10,000 test images and export each trained model for deployment (kiln-compile, kiln-run).
//
// Usage: see kUsage below (--help). Defaults: both models, MLP 5 epochs, LeNet (ReLU) 2 epochs,
// batch 50, Adam with lr 0.001 decaying along a cosine to 0 over each model's run, Xavier
// initialisation; these reach the targets (MLP >= 85%, LeNet >= 88%) on the test set.
// Per epoch it prints the mean training loss (cross-entropy of SoftmaxOutput's probabilities),
// the training accuracy (of the network as it was during the epoch), the test accuracy and the
// training throughput in samples per second.
//
// Export (--export-dir DIR, default <build>/demo beside <build>/examples): for each model trained,
// NAME-symbol.json (MXNet symbol JSON), NAME.params (MXNet .params: the trained parameters, not
// data or softmax_label) and NAME-probs.npy (float32 [10000, 10]: the in-process class
// probabilities on the test set, from which its test accuracy was computed); and the test set
// once: test_labels.npy (int32 [10000]), test_images_flat.npy (float32 [10000, 784], the MLP's
// data) and test_images.npy (float32 [10000, 1, 28, 28], LeNet's), each as the models trained
// need. NAME is "mlp" or "lenet". dev.sh's demo compiles each with kiln-compile, runs it with
// kiln-run and scores the result with --score.
//
// Scoring (--score OUTPUT.npy --labels LABELS.npy): prints the accuracy of the class
// probabilities in OUTPUT.npy ([N, classes], any float dtype) against LABELS.npy ([N], integer
// or float class ids) in the format of the in-process line. With --reference REF.npy (probabilities
// of the same images, e.g. NAME-probs.npy) it prints REF's accuracy too, counts the images whose
// predicted class differs and the largest probability difference, and exits 1 when the two
// accuracies differ by more than --tolerance percentage points (default 0.01: one image in 10,000).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>

#include "kiln/frontend/data_iter.h"
#include "kiln/frontend/executor.h"
#include "kiln/frontend/idx.h"
#include "kiln/frontend/initializer.h"
#include "kiln/frontend/models.h"
#include "kiln/frontend/ops.h"
#include "kiln/frontend/optimizer.h"
#include "kiln/frontend/params.h"
#include "kiln/ir/text.h"
#include "kiln/passes/infer.h"
#include "kiln/runtime/npy.h"

namespace {

using namespace kiln;
using Clock = std::chrono::steady_clock;

const char* const kUsage =
    "usage: fashion_mnist_demo [--model mlp|lenet|all] [--epochs-mlp N] [--epochs-lenet N]\n"
    "                          [--train-limit N] [--batch N] [--lr RATE] [--data DIR]\n"
    "                          [--lenet-act relu|tanh|sigmoid] [--quiet-ir] [--export-dir DIR]\n"
    "       fashion_mnist_demo --score OUTPUT.npy --labels LABELS.npy [--name TEXT]\n"
    "                          [--reference REF.npy [--reference-name TEXT] [--tolerance PP]]\n"
    "  --export-dir DIR  where the trained models and the test set are written (created;\n"
    "                    default: <build>/demo, beside the directory of this program)\n"
    "  --score OUTPUT.npy  print the accuracy of the class probabilities in OUTPUT.npy\n"
    "                    ([N, classes]) against LABELS.npy ([N]), and exit\n"
    "  --reference REF.npy  also score REF.npy (e.g. the in-process NAME-probs.npy), compare the\n"
    "                    predictions, and exit 1 if the accuracies differ by more than PP\n"
    "                    percentage points (default 0.01)\n";

struct Options {
  std::string model = "all";
  int epochs_mlp = 5;
  int epochs_lenet = 2;
  int64_t train_limit = -1;
  int64_t batch = 50;
  double lr = 0.001;
  std::string lenet_act = "relu";
  std::string data_dir = kFashionMnistDir;
  bool print_ir = true;
  std::string export_dir;  // empty: DefaultExportDir()
  // Scoring mode.
  std::string score, labels, name, reference, reference_name = "in process";
  double tolerance_pp = 0.01;
};

// <build>/demo when this program is <build>/examples/fashion_mnist_demo, else ./demo.
std::string DefaultExportDir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && exe.parent_path().filename() == "examples")
    return (exe.parent_path().parent_path() / "demo").string();
  return "demo";
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Counts correct predictions and sums -log p[label] over the first `rows` rows of `probs`.
void Score(const Tensor& probs, const Tensor& labels, int64_t rows, int64_t* correct,
           double* loss) {
  const float* p = probs.data<float>();
  int64_t classes = probs.dim(1);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t label = int64_t(labels.At(r)), best = 0;
    for (int64_t c = 1; c < classes; ++c)
      if (p[r * classes + c] > p[r * classes + best]) best = c;
    *correct += best == label;
    *loss -= std::log(std::max(double(p[r * classes + label]), 1e-12));
  }
}

// Accuracy of `train`'s current weights on `test`, through an evaluation executor that shares
// them (bound once per model). The class probabilities of every test image go to `*probs`
// (float32 [N, classes]).
double Evaluate(Executor& eval, const ImageDataset& test, const std::vector<int64_t>& shape,
                Tensor* probs) {
  const Tensor& out = eval.outputs()[0];
  int64_t batch = out.dim(0), classes = out.dim(1), correct = 0, row = 0;
  double loss = 0;
  std::vector<int64_t> data_shape = shape;
  data_shape[0] = test.images.dim(0);
  *probs = Tensor::Empty({test.images.dim(0), classes}, DType::kFloat32);
  DataIter it(test.images.Reshaped(data_shape), test.labels, batch, false);
  for (it.Reset(); it.Next();) {
    eval.Forward(false, {{"data", it.data()}});
    int64_t rows = batch - it.pad();
    Score(eval.outputs()[0], it.label(), rows, &correct, &loss);
    std::memcpy(probs->data<float>() + row * classes, eval.outputs()[0].data<float>(),
                size_t(rows * classes) * sizeof(float));
    row += rows;
  }
  return double(correct) / double(test.images.dim(0));
}

std::string Megabytes(const std::string& path) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f MB", double(std::filesystem::file_size(path)) / 1e6);
  return text;
}

// Trains `net` (ending in SoftmaxOutput "softmax"), exports it as `export_dir`/`name`-symbol.json,
// `name`.params and `name`-probs.npy, and returns the final test accuracy.
double Train(const std::string& title, const std::string& name, const Symbol& net,
             std::vector<int64_t> sample_shape, const ImageDataset& train, const ImageDataset& test,
             int epochs, int64_t batch, Optimizer& opt, const std::string& export_dir) {
  std::vector<int64_t> batch_shape = {batch};
  batch_shape.insert(batch_shape.end(), sample_shape.begin(), sample_shape.end());
  std::vector<int64_t> eval_shape = batch_shape;
  eval_shape[0] = 1000;
  std::printf("\n== %s: %zu parameter arrays, batch %lld, %d epochs ==\n", title.c_str(),
              net.ListArguments().size() - 2, (long long)batch, epochs);
  Executor exec = net.SimpleBind(Device::CPU(), {{"data", Shape(batch_shape)}},
                                 GradReqs::Except(GradReq::kWrite, {"data", "softmax_label"}));
  InitParams(exec, Initializer::Xavier(XavierRnd::kUniform, XavierFactor::kAvg, 3.0),
             {"data", "softmax_label"});
  Executor eval =
      net.SimpleBind(Device::CPU(), {{"data", Shape(eval_shape)}}, GradReq::kNull, {}, &exec);

  std::vector<int64_t> all_shape = batch_shape;
  all_shape[0] = train.images.dim(0);
  DataIter it(train.images.Reshaped(all_shape), train.labels, batch, /*shuffle=*/true, 42);
  double test_acc = 0;
  Tensor probs;
  auto train_start = Clock::now();
  std::printf("epoch  train-loss  train-acc  test-acc  samples/s\n");
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    auto start = Clock::now();
    int64_t correct = 0, seen = 0;
    double loss = 0;
    for (it.Reset(); it.Next();) {
      exec.Forward(true, {{"data", it.data()}, {"softmax_label", it.label()}});
      exec.Backward();
      opt.Update(exec);
      int64_t rows = batch - it.pad();
      Score(exec.outputs()[0], it.label(), rows, &correct, &loss);
      seen += rows;
    }
    double secs = Seconds(start);
    test_acc = Evaluate(eval, test, all_shape, &probs);
    std::printf("%5d  %10.4f  %8.2f%%  %7.2f%%  %9.0f\n", epoch, loss / double(seen),
                100.0 * double(correct) / double(seen), 100.0 * test_acc, double(seen) / secs);
    std::fflush(stdout);
  }
  if (epochs == 0) test_acc = Evaluate(eval, test, all_shape, &probs);
  std::printf("%s: test accuracy on %lld images: %.2f%% (trained and evaluated in %.0f s)\n",
              title.c_str(), (long long)test.images.dim(0), 100.0 * test_acc, Seconds(train_start));

  // The deployable model: the graph, the trained parameters (arguments other than the inputs,
  // and auxiliary states if any) and, to compare against, the in-process probabilities.
  std::string stem = export_dir + "/" + name;
  net.Save(stem + "-symbol.json");
  ParamFile params = ExecutorParams(exec, {"data", "softmax_label"});
  SaveParams(stem + ".params", params);
  WriteNpy(stem + "-probs.npy", probs);
  std::printf("Exported to %s/: %s-symbol.json, %s.params (%zu arrays, %s), %s-probs.npy\n",
              export_dir.c_str(), name.c_str(), name.c_str(), params.arg.size() + params.aux.size(),
              Megabytes(stem + ".params").c_str(), name.c_str());
  return test_acc;
}

void ShowSeedMlp(int64_t batch) {
  // The seed example, as the issue writes it.
  Symbol data = Symbol::Variable("data");
  Symbol fc1 = FullyConnected(data, 128, "fc1");
  Symbol act1 = Activation(fc1, "relu", "relu1");
  Symbol fc2 = FullyConnected(act1, 64, "fc2");
  Symbol act2 = Activation(fc2, "relu", "relu2");
  Symbol fc3 = FullyConnected(act2, 10, "fc3");
  Symbol mlp = SoftmaxOutput(fc3, "softmax");
  ShapeResult shapes = mlp.InferShape({{"data", {batch, 784}}});
  std::printf("== The seed MLP, built with the Symbol API ==\n");
  for (const auto& [name, shape] : shapes.arguments)
    std::printf("  %-14s %s\n", name.c_str(), shape.ToString().c_str());
  for (const auto& [name, shape] : shapes.outputs)
    std::printf("  %-14s %s\n", name.c_str(), shape.ToString().c_str());
  Graph g = mlp.ToGraph();
  InferOptions infer;
  infer.shapes["data"] = Shape{batch, 784};
  InferShapes(g, infer);
  InferTypes(g, infer);
  std::printf("\nTyped IR:\n%s", PrintGraph(g).c_str());
}

// Accuracy of the class probabilities `probs` ([N, classes]) against `labels` ([N] class ids);
// `predicted` gets each row's class.
double Accuracy(const Tensor& probs, const std::vector<double>& labels, const std::string& what,
                std::vector<int64_t>* predicted) {
  if (probs.ndim() != 2 || probs.dim(0) != int64_t(labels.size()) || probs.dim(1) < 1)
    throw UserError(StrCat(what, ": expected class probabilities of shape (", labels.size(),
                           ", classes) for the ", labels.size(), " labels; the file holds ",
                           probs.TypeString()));
  std::vector<double> p = probs.ToDoubles();
  int64_t rows = probs.dim(0), classes = probs.dim(1), correct = 0;
  predicted->assign(size_t(rows), 0);
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = p.data() + r * classes;
    int64_t best = std::max_element(row, row + classes) - row;
    (*predicted)[size_t(r)] = best;
    correct += double(best) == labels[size_t(r)];
  }
  return rows ? double(correct) / double(rows) : 0.0;
}

// --score: the accuracy of OUTPUT.npy (and REF.npy) against LABELS.npy.
int ScoreFiles(const Options& o) {
  Tensor labels_t = ReadNpy(o.labels);
  if (labels_t.ndim() == 2 && labels_t.dim(1) == 1) labels_t = labels_t.Reshaped({labels_t.dim(0)});
  if (labels_t.ndim() != 1)
    throw UserError(StrCat(o.labels, ": expected class ids of shape (N); the file holds ",
                           labels_t.TypeString()));
  std::vector<double> labels = labels_t.ToDoubles();
  for (double l : labels)
    if (l < 0 || l != std::floor(l))
      throw UserError(StrCat(o.labels, ": ", l, " is not a class id"));
  Tensor probs = ReadNpy(o.score);
  std::vector<int64_t> predicted, ref_predicted;
  double acc = Accuracy(probs, labels, o.score, &predicted);
  std::string name = o.name.empty() ? o.score : o.name;
  if (o.reference.empty()) {
    std::printf("%s: test accuracy on %zu images: %.2f%%\n", name.c_str(), labels.size(),
                100.0 * acc);
    return 0;
  }
  Tensor ref = ReadNpy(o.reference);
  double ref_acc = Accuracy(ref, labels, o.reference, &ref_predicted);
  if (ref.shape() != probs.shape())
    throw UserError(StrCat(o.reference, " holds ", ref.TypeString(), " but ", o.score, " holds ",
                           probs.TypeString()));
  int width = int(std::max(name.size(), o.reference_name.size())) + 1;
  std::printf("%-*s test accuracy on %zu images: %.2f%%\n", width, (o.reference_name + ":").c_str(),
              labels.size(), 100.0 * ref_acc);
  std::printf("%-*s test accuracy on %zu images: %.2f%%\n", width, (name + ":").c_str(),
              labels.size(), 100.0 * acc);
  std::vector<double> a = probs.ToDoubles(), b = ref.ToDoubles();
  double max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) max_diff = std::max(max_diff, std::abs(a[i] - b[i]));
  int64_t same = 0;
  for (size_t r = 0; r < predicted.size(); ++r) same += predicted[r] == ref_predicted[r];
  double diff_pp = 100.0 * std::abs(acc - ref_acc);
  bool ok = diff_pp <= o.tolerance_pp + 1e-9;
  std::printf(
      "Same predicted class for %lld of %zu images; largest probability difference %.2g; "
      "accuracies %s (%.2f percentage points apart, tolerance %.2f)\n",
      (long long)same, predicted.size(), max_diff, ok ? "agree" : "DISAGREE", diff_pp,
      o.tolerance_pp);
  return ok ? 0 : 1;
}

// Writes `t` to `dir`/`file` and says so.
void ExportNpy(const std::string& dir, const std::string& file, const Tensor& t) {
  WriteNpy(dir + "/" + file, t);
  std::printf("Exported to %s/: %s %s (%s)\n", dir.c_str(), file.c_str(), t.TypeString().c_str(),
              Megabytes(dir + "/" + file).c_str());
}

int Run(const Options& o) {
  if (!o.score.empty()) return ScoreFiles(o);
  std::string export_dir = o.export_dir.empty() ? DefaultExportDir() : o.export_dir;
  std::error_code ec;
  std::filesystem::create_directories(export_dir, ec);
  if (ec) throw UserError(StrCat("--export-dir ", export_dir, ": ", ec.message()));
  if (o.print_ir) ShowSeedMlp(o.batch);
  auto start = Clock::now();
  ImageDataset train = ReadMnistStyle(o.data_dir, "train", o.train_limit);
  ImageDataset test = ReadMnistStyle(o.data_dir, "t10k");
  std::printf("\nFashion-MNIST: %lld training and %lld test images from %s (%.1f s)\n",
              (long long)train.images.dim(0), (long long)test.images.dim(0), o.data_dir.c_str(),
              Seconds(start));
  bool ok = true;
  bool mlp = o.model == "mlp" || o.model == "all", lenet = o.model == "lenet" || o.model == "all";
  // The test set as the exported models take it (the labels as int32 class ids).
  std::printf("\n");
  ExportNpy(export_dir, "test_labels.npy", test.labels.CastTo(DType::kInt32));
  if (mlp) ExportNpy(export_dir, "test_images_flat.npy", test.images);
  if (lenet)
    ExportNpy(export_dir, "test_images.npy",
              test.images.Reshaped({test.images.dim(0), 1, test.rows, test.cols}));
  // Adam with the learning rate decaying along a cosine to 0 over the whole run.
  int64_t batches = (train.images.dim(0) + o.batch - 1) / o.batch;
  auto make_adam = [&](int epochs) {
    return Adam({.learning_rate = o.lr,
                 .rescale_grad = 1.0 / double(o.batch),
                 .lr_schedule = LRSchedule::Cosine(o.lr, std::max<int64_t>(1, epochs * batches))});
  };
  if (mlp) {
    Adam adam = make_adam(o.epochs_mlp);
    double acc = Train("MLP 784-128-64-10", "mlp", models::Mlp(), {784}, train, test, o.epochs_mlp,
                       o.batch, adam, export_dir);
    ok &= acc >= 0.85 || o.train_limit >= 0;
  }
  if (lenet) {
    Adam adam = make_adam(o.epochs_lenet);
    double acc = Train("LeNet (" + o.lenet_act + ")", "lenet", models::LeNet(10, o.lenet_act),
                       {1, 28, 28}, train, test, o.epochs_lenet, o.batch, adam, export_dir);
    ok &= acc >= 0.88 || o.train_limit >= 0;
  }
  std::printf("\n%s\n", ok ? "Targets reached (MLP >= 85%, LeNet >= 88%)."
                           : "A target was missed (MLP >= 85%, LeNet >= 88%).");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "fashion_mnist_demo: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model")
      o.model = value();
    else if (a == "--epochs-mlp")
      o.epochs_mlp = std::atoi(value().c_str());
    else if (a == "--epochs-lenet")
      o.epochs_lenet = std::atoi(value().c_str());
    else if (a == "--train-limit")
      o.train_limit = std::atoll(value().c_str());
    else if (a == "--batch")
      o.batch = std::atoll(value().c_str());
    else if (a == "--lr")
      o.lr = std::atof(value().c_str());
    else if (a == "--lenet-act")
      o.lenet_act = value();
    else if (a == "--data")
      o.data_dir = value();
    else if (a == "--quiet-ir")
      o.print_ir = false;
    else if (a == "--export-dir")
      o.export_dir = value();
    else if (a == "--score")
      o.score = value();
    else if (a == "--labels")
      o.labels = value();
    else if (a == "--name")
      o.name = value();
    else if (a == "--reference")
      o.reference = value();
    else if (a == "--reference-name")
      o.reference_name = value();
    else if (a == "--tolerance")
      o.tolerance_pp = std::atof(value().c_str());
    else if (a == "--help") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "%s", kUsage);
      return 2;
    }
  }
  if (o.score.empty() != o.labels.empty()) {
    std::fprintf(stderr, "fashion_mnist_demo: --score and --labels go together\n");
    return 2;
  }
  if (o.model != "mlp" && o.model != "lenet" && o.model != "all") {
    std::fprintf(stderr, "fashion_mnist_demo: --model must be mlp, lenet or all\n");
    return 2;
  }
  if (o.batch < 1 || o.epochs_mlp < 0 || o.epochs_lenet < 0 || !(o.lr > 0)) {
    std::fprintf(stderr, "fashion_mnist_demo: --batch must be >= 1, epochs >= 0 and --lr > 0\n");
    return 2;
  }
  try {
    return Run(o);
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "fashion_mnist_demo: %s: %s\n", e.kind(), e.what());
    return 1;
  }
}
