import { productSuite } from './product-suite.js';

productSuite();
