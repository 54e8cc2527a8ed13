# lit configuration for kiln's golden text-IR tests.
# A test is a .kir (kiln text IR) or .json file whose RUN lines call kiln-opt or kiln-dump and
# pipe the result through FileCheck. %kiln-opt, %kiln-dump and FileCheck name the built tools.
import os
import lit.formats

config.name = "kiln"
config.test_format = lit.formats.ShTest(True)
config.suffixes = [".kir", ".json", ".test"]
config.test_source_root = os.path.join(config.kiln_source_dir, "tests", "lit")
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py.in"]
config.substitutions.append(("%kiln-opt", os.path.join(config.kiln_tools_dir, "kiln-opt")))
config.substitutions.append(("%kiln-dump", os.path.join(config.kiln_tools_dir, "kiln-dump")))
config.substitutions.append(
    ("%kiln-compile", os.path.join(config.kiln_tools_dir, "kiln-compile")))
config.substitutions.append(("%kiln-run", os.path.join(config.kiln_tools_dir, "kiln-run")))
config.substitutions.append(("%kiln-rt-lib", config.kiln_runtime_lib))
config.substitutions.append(("%python", "/usr/bin/python3"))
config.substitutions.append(
    ("%build-models", os.path.join(config.kiln_examples_dir, "build_models")))
config.substitutions.append(("FileCheck", config.filecheck))
config.substitutions.append(("%not", "not"))
# Tests run every pipeline with the verifier after each pass (see PassManagerOptions).
config.environment["KILN_VERIFY_EACH"] = "1"
config.environment["PATH"] = os.pathsep.join(
    ["/usr/lib/llvm-19/bin", config.environment.get("PATH", os.environ.get("PATH", ""))])
